"""Write the component package schema to schema/serverless-mail.schema.json.

Runs the same schema inference as the provider host (``pulumi.provider.experimental``)
on the components listed in ``serverless_mail.provider.EXPOSED``; no Pulumi CLI.

    python scripts/gen_schema.py           # rewrite the snapshot
    python scripts/gen_schema.py --check   # exit 1 if the snapshot is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from serverless_mail.provider import package_schema

SNAPSHOT = Path(__file__).resolve().parents[1] / "schema" / "serverless-mail.schema.json"


def render() -> str:
    """The schema as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(package_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the snapshot is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
        if current != text:
            print(f"{SNAPSHOT} is stale: run python scripts/gen_schema.py", file=sys.stderr)
            return 1
        return 0
    SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
    SNAPSHOT.write_text(text, encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
