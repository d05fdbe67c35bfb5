import sys
from pathlib import Path

# make tests/reference.py importable as `reference`
sys.path.insert(0, str(Path(__file__).parent))
