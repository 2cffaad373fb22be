"""Makes and checks the safetensors interop files used by tests/checkpoint.rs.

    python3 make_safetensors.py make     # writes from_python.safetensors
    python3 make_safetensors.py check F  # loads a file written by chainrule, prints it

Needs the `safetensors` and `numpy` PyPI packages.
"""
import sys

import numpy as np
from safetensors.numpy import load_file, save_file

if sys.argv[1] == "make":
    save_file(
        {
            "weight": np.arange(6, dtype=np.float32).reshape(2, 3) / 8.0 - 0.25,
            "bias": np.array([1.5, -2.0], dtype=np.float32),
        },
        "from_python.safetensors",
    )
else:
    for name, value in sorted(load_file(sys.argv[2]).items()):
        print(name, value.dtype, list(value.shape), value.ravel().tolist())
