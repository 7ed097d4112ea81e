"""Print the README's Quickstart commands (the bash block between the quickstart markers), one per line."""
from pathlib import Path
import re
import sys

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart_commands(text: str) -> list[str]:
    match = re.search(r"<!-- quickstart -->\s*```bash\n(.*?)```\s*<!-- /quickstart -->", text, re.S)
    if match is None:
        sys.exit(f"{README}: no ```bash block between <!-- quickstart --> and <!-- /quickstart -->")
    return [line.split("  #")[0].rstrip() for line in match.group(1).splitlines() if line.strip() and not line.startswith("#")]


if __name__ == "__main__":
    print("\n".join(quickstart_commands(README.read_text())))
