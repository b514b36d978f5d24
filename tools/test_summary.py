"""Sum up the pytest JUnit reports of a `make test` run into one closing line."""

from __future__ import annotations

import glob
import os
import sys
import xml.etree.ElementTree as ET


def main(directory):
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for path in sorted(glob.glob(os.path.join(directory, "*.xml"))):
        root = ET.parse(path).getroot()
        suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
        for suite in suites:
            for key in totals:
                totals[key] += int(suite.get(key, 0))
    failed = totals["failures"] + totals["errors"]
    passed = totals["tests"] - failed - totals["skipped"]
    print("%d passed, %d failed, %d skipped" % (passed, failed, totals["skipped"]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
