# -*- coding: utf-8 -*-
# Copyright: contributors to the datastore.kubernetes collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes naming rules, checked before anything is sent to the API server."""

from __future__ import annotations

__metaclass__ = type

import re

from ansible_collections.datastore.kubernetes.plugins.module_utils._errors import InvalidInput

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def is_dns_label(value: object, max_len: int = 63) -> bool:
    """A DNS-1123 label: lower-case letters, digits and '-', at most ``max_len`` characters."""
    return isinstance(value, str) and len(value) <= max_len and bool(DNS1123_LABEL.match(value))


def is_dns_subdomain(value: object, max_len: int = 253) -> bool:
    """A DNS-1123 subdomain: DNS-1123 labels joined by '.', at most ``max_len`` characters."""
    return isinstance(value, str) and len(value) <= max_len and bool(DNS1123_SUBDOMAIN.match(value))


def check_dns_label(field: str, value: object, max_len: int = 63) -> None:
    if not is_dns_label(value, max_len):
        raise InvalidInput(field, "%r is not a valid DNS-1123 label: lower-case letters, digits and '-', starting "
                                  "and ending with a letter or digit, at most %d characters" % (value, max_len))


def check_dns_domain(field: str, value: str) -> None:
    """A DNS domain (the cluster domain): DNS-1123 labels of at most 63 characters, 253 in all."""
    if not is_dns_subdomain(value) or any(len(label) > 63 for label in value.split(".")):
        raise InvalidInput(field, "%r is not a valid DNS domain" % (value,))
