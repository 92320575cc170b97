"""Validates a FHIR R4 Bundle (standard input) with fhir.resources 6.4.0, the last R4 release,
plus the Bundle invariants its model does not enforce: bdl-1 (`total` only in search and history
bundles) and bdl-7 (`fullUrl` unique). Prints `valid <entries>` or the problems; exits 0 or 1.
Used by the audit export test (tests/api/audit.rs)."""

import json
import sys

from fhir.resources.bundle import Bundle


def main():
    text = sys.stdin.read()
    problems = []
    try:
        bundle = Bundle.parse_raw(text)
    except Exception as error:  # the model's validation errors, whatever their class
        print(f"invalid: {error}")
        return 1
    raw = json.loads(text)
    if "total" in raw and raw.get("type") not in ("searchset", "history"):
        problems.append("bdl-1: total only when a search or history")
    urls = [e.get("fullUrl") for e in raw.get("entry", []) if e.get("fullUrl")]
    if len(urls) != len(set(urls)):
        problems.append("bdl-7: FullUrl must be unique in a bundle")
    for key, value in raw.items():
        if value == [] or value == {}:
            problems.append(f"empty {key}: FHIR JSON has no empty arrays or objects")
    for entry in raw.get("entry", []):
        if entry.get("resource", {}).get("resourceType") != "AuditEvent":
            problems.append("an entry is not an AuditEvent")
    if problems:
        print("invalid: " + "; ".join(problems))
        return 1
    print(f"valid {len(bundle.entry or [])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
