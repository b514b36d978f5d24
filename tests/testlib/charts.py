"""Small Helm charts written into a test's temporary directory."""

from __future__ import annotations

import os

CONFIGMAP_TEMPLATE = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
                      "data:\n  greeting: {{ .Values.greeting | quote }}\n")


def write_chart(directory, name="tiny", version="0.1.0", values="greeting: hello\n", templates=None,
                app_version="1.0"):
    """A chart in ``directory`` (created): Chart.yaml, values.yaml and ``templates`` (file name -> text,
    by default one ConfigMap). ``app_version=None`` leaves appVersion out. Returns the directory as a str."""
    directory = str(directory)
    os.makedirs(os.path.join(directory, "templates"), exist_ok=True)
    chart_yaml = "apiVersion: v2\nname: %s\nversion: %s\n" % (name, version)
    if app_version is not None:
        chart_yaml += "appVersion: \"%s\"\n" % app_version
    with open(os.path.join(directory, "Chart.yaml"), "w") as handle:
        handle.write(chart_yaml)
    with open(os.path.join(directory, "values.yaml"), "w") as handle:
        handle.write(values)
    for filename, text in (templates if templates is not None else {"cm.yaml": CONFIGMAP_TEMPLATE}).items():
        with open(os.path.join(directory, "templates", filename), "w") as handle:
            handle.write(text)
    return directory
