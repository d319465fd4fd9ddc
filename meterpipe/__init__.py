"""meterpipe's shared runtime: settings, Kafka client config, embedded broker, metrics and CLI.

numpy's OpenBLAS starts a pool of threads, one per core, whose idle spinning takes CPU
from the pipeline's own threads (about a tenth of a consumer's CPU on two cores), and
meterpipe does no linear algebra: one thread, unless the environment says otherwise. It
is read once, when numpy is first imported, which is after this.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
