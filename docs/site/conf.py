# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sphinx settings of the HTML documentation `make docs` builds from the modules' and roles' docs.

The pages are made by antsibull-docs; nothing is fetched while building (no intersphinx): the few
references to Ansible's own documentation resolve to ansible.rst, which links out to it.
"""

project = "datastore.kubernetes"
copyright = "contributors to the datastore.kubernetes collection"  # pylint: disable=redefined-builtin
title = "datastore.kubernetes"
html_short_title = "datastore.kubernetes"

extensions = ["sphinx_antsibull_ext"]

pygments_style = "ansible"
highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = "any"
nitpicky = True
