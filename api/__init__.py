"""The Deep Draw inference service (``api.main``: the app; ``api.serve``: its workers' supervisor)."""

import os

# One BLAS thread per process, set before numpy loads OpenBLAS: the service runs a worker per core,
# and a matrix product spread over every core from each of them (the prototype model's similarity
# to 10,497 stored embeddings) made each request cost 1.5x the CPU, and several times that under
# load. An operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
