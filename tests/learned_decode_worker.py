"""A long-lived decode worker for tests/test_fuzz_learned.py (run as a script, not collected).

stdin: JSON lines {"model", "checkpoint", "data": base64}; stdout: one JSON line per request,
{"outcome": "decoded", "shape", "pixels": base64} | {"outcome": "refused", "detail"} (a
CodecError) | {"outcome": "error", "detail"} (any other exception: a bug). The address space
is limited (argv[1] bytes, RLIMIT_AS) so a runaway allocation fails here, not the machine.
"""

import base64
import json
import resource
import sys


def main() -> None:
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    from rsicbench.reproduce.codecs.base import CodecError, create_codec

    torch.set_num_threads(1)
    codecs = {}
    for line in sys.stdin:
        req = json.loads(line)
        key = (req["model"], req["checkpoint"])
        try:
            if key not in codecs:
                codecs[key] = create_codec(req["model"], 0, checkpoint=req["checkpoint"], threads=1)
            img = codecs[key].decode(base64.b64decode(req["data"]))
            out = {"outcome": "decoded", "shape": list(img.shape), "pixels": base64.b64encode(img.tobytes()).decode()}
        except CodecError as e:
            out = {"outcome": "refused", "detail": str(e)}
        except BaseException as e:  # noqa: BLE001 - reported to the parent, which fails the test
            out = {"outcome": "error", "detail": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
