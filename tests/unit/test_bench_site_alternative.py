"""The site case's alternative takes nothing from this collection but the pod_security_context filter."""

from __future__ import annotations

from benchlib import cases


def test_the_alternative_uses_only_the_filter():
    files = [cases.ALT_SITE] + sorted((cases.ALT_PB / "templates").glob("*.j2"))
    assert cases.ALT_SITE.exists() and len(files) > 1
    assert cases.alt_site_foreign_use(files) is None


def test_a_module_of_the_collection_is_named(tmp_path):
    allowed = tmp_path / "filter.yml.j2"
    allowed.write_text("securityContext: {{ {} | datastore.kubernetes.pod_security_context('container') }}\n")
    module = tmp_path / "site.yml"
    module.write_text("- name: StatefulSet\n  datastore.kubernetes.statefulset:\n    name: db\n")
    assert cases.alt_site_foreign_use([allowed]) is None
    why = cases.alt_site_foreign_use([allowed, module])
    assert why is not None and "datastore.kubernetes.statefulset" in why and "site.yml" in why
