"""Test-wide set-up: make this checkout importable as ansible_collections.selfmanaged.eks.

`make venv` links .venv/collections/ansible_collections/selfmanaged/eks to the checkout;
the bundled collections (amazon.aws, kubernetes.core, ...) come from the `ansible` package
in site-packages. `ansible_collections` is a namespace package, so both halves merge.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / ".venv" / "collections"

if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS))
