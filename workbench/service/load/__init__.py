"""Open-loop load: schedules, the endpoint mix, the generator, results, k6 import; wrk for saturation.

>>> profile = Profile.steps([50, 100, 200], seconds=5)                     # doctest: +SKIP
>>> reqs = paths(Mix(), targets(dataset), len(profile.intended()[0]))       # doctest: +SKIP
>>> run = run_load("http://127.0.0.1:8000", profile, reqs)                   # doctest: +SKIP
>>> run.summary(per_stage=True)                                             # doctest: +SKIP
"""

from workbench.service.load.generator import HttpSender, OpenLoop, check_reachable, check_url, run_load
from workbench.service.load.k6 import import_summary
from workbench.service.load.mix import Mix, Targets, paths, targets
from workbench.service.load.results import LoadRun, new_histogram, quantile_interval, record
from workbench.service.load.schedule import LoadError, Profile, Stage
from workbench.service.load.wrk import WrkResult, run_wrk

__all__ = [
    "HttpSender",
    "LoadError",
    "LoadRun",
    "Mix",
    "OpenLoop",
    "Profile",
    "Stage",
    "Targets",
    "WrkResult",
    "check_reachable",
    "check_url",
    "import_summary",
    "new_histogram",
    "paths",
    "quantile_interval",
    "record",
    "run_load",
    "run_wrk",
    "targets",
]
