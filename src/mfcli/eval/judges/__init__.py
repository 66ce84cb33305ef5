"""Judges score free-text answers: against a label set (exact, embed, clip, openai, cascade) or, for the
other record kinds, on that kind's metric (vqa, caption, choice). One module each, behind the registry
in `registry.py`: a new judge is one module that calls `register` (and one import line below), plus its
test.
"""

from mfcli.eval.judges.registry import (JUDGES, Judge, JudgeOptions, judge_params, label_judges,  # noqa: F401
                                        make_judge, metric_judge, metric_judges, register)

# importing a judge module registers it; this order is the order --help lists judges and their options in
from mfcli.eval.judges import exact, embed, openai_judge, cascade, vqa, caption, choice, text  # noqa: E402,F401
