"""Regenerate docs/plant/model-keys.md from the model declarations (:func:`process_models.model_keys.reference`).

    python tools/gen_model_keys.py          # writes the file
    python tools/gen_model_keys.py --check  # exit 1 if the file is not current
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from process_models.model_keys import reference  # noqa: E402

TARGET = REPO / "docs" / "plant" / "model-keys.md"


def main(argv: list[str]) -> int:
    text = reference()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.is_file() else ""
        if current != text:
            print(f"{TARGET.relative_to(REPO)} is not current: run python tools/gen_model_keys.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
