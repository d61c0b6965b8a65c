"""The Markdown report of ``rimrl compare``: every number comes from the report dictionary
(also written as ``report.json``); figures are embedded by relative path."""

from __future__ import annotations

from pathlib import Path

from rimrl.report.compare import format_number as f
from rimrl.runs import REPORT_MD


def write_markdown(report: dict, figures: dict[str, Path], out_dir: Path) -> Path:
    """``report.md`` in ``out_dir``: the sections of :data:`SECTIONS` in order, each from
    its part of ``report``; ``figures`` (key -> file under ``out_dir``) are embedded."""
    embed = Figures(figures, out_dir)
    lines = [line for section in SECTIONS for line in section(report, embed)]
    path = out_dir / REPORT_MD
    path.write_text("\n".join(lines) + "\n")
    return path


class Figures:
    """The report's figures by key, as Markdown image links relative to the report."""

    def __init__(self, figures: dict, out_dir: Path):
        self.figures, self.out_dir = figures, out_dir

    def __contains__(self, key) -> bool:
        return key in self.figures

    def link(self, key, label: str) -> str:
        return f"![{label}]({_rel(self.figures[key], self.out_dir)})"

    def activation(self) -> list[tuple]:
        return [k for k in self.figures if k[0] == "activation"]


def table_section(title: str, intro: str, columns: list[str]) -> list[str]:
    """A section's heading, its one-paragraph introduction and its table's header."""
    return ["", f"## {title}", "", intro, "", "| " + " | ".join(columns) + " |",
            "| " + " | ".join("---" for _ in columns) + " |"]


def header(report: dict, figures: Figures) -> list[str]:
    lines = ["# rimrl comparison report", ""]
    lines += [f"{len(report['runs'])} runs; methods: {', '.join(report['methods'])}. "
              "Scores are raw episode returns (game scores on Atari), SB3's mean over the last "
              "100 training episodes; intervals over seeds are 95% Student-t intervals below 10 "
              "seeds (a percentile bootstrap from 10 up).", ""]
    lines += [f"**Warning:** {w}" for w in report.get("warnings", [])]
    if report.get("warnings"):
        lines.append("")
    return lines


def learning_curves(report: dict, figures: Figures) -> list[str]:
    lines = ["## Learning curves", ""]
    for env in report["curves"]:
        if ("curve", env) in figures:
            lines.append(figures.link(("curve", env), env))
    return lines


def generalization(report: dict, figures: Figures) -> list[str]:
    if not report.get("generalization"):
        return []
    lines = table_section(
        "Generalization over training (evaluations during training)",
        "Success rate on each evaluated split over training (`--eval-every`), mean over seeds "
        "with a 95% band over seeds; the shape of the thesis' Fig. 4.",
        ["env", "method", "split", "last step", "success", "95% CI"])
    for env, by in report["generalization"].items():
        for m, curves in by.items():
            for split, c in curves.items():
                ci = ("n=1, no interval" if c["ci95_low"] is None else
                      f"[{f(c['ci95_low'][-1])}, {f(c['ci95_high'][-1])}]")
                lines.append(f"| {env} | {m} | {split} | {c['frames'][-1]:,} | "
                             f"{f(c['success_mean'][-1])} | {ci} |")
        if ("generalization", env) in figures:
            lines += ["", figures.link(("generalization", env), f"{env} generalization"), ""]
    return lines


def final_scores(report: dict, figures: Figures) -> list[str]:
    lines = table_section(
        "Final scores",
        "Source: the last evaluation during training where a run has one (its mean return on "
        "the setting it trained on), else the mean of its last 100 training episodes; the "
        "last column says which.",
        ["env", "method", "seeds", "mean", "95% CI", "source"])
    for env, by in report["final_scores"].items():
        for m, s in by.items():
            ci = ("n=1, no interval" if s["ci95"] is None
                  else f"[{f(s['ci95'][0])}, {f(s['ci95'][1])}]")
            lines.append(f"| {env} | {m} | {len(s['scores'])} | {f(s['mean'])} | {ci} | "
                         f"{'; '.join(s['sources'])} |")
    return lines


def relative_improvement(report: dict, figures: Figures) -> list[str]:
    rel = report["relative_improvement"]
    lines = ["", f"## Relative improvement: {rel['formula']}", ""]
    if not rel["per_env"]:
        return lines + [f"No env has runs of both '{rel['method']}' and '{rel['baseline']}' "
                        "(choose them with --method and --baseline)."]
    lines += ["| env | improvement | 95% CI over seeds | seeds it rests on |",
              "| --- | --- | --- | --- |"]
    for env, v in rel["per_env"].items():
        ci = rel.get("ci95", {}).get(env)
        ci_text = f"[{100 * ci[0]:.1f}%, {100 * ci[1]:.1f}%]" if ci else "n=1, no interval"
        lines.append(f"| {env} | {100 * v:.1f}% | {ci_text} | "
                     + ", ".join(f"{m} {n}" for m, n in rel["seeds"][env].items()) + " |")
    if "relative" in figures:
        lines += ["", figures.link("relative", "relative improvement")]
    return lines


def aggregate(report: dict, figures: Figures) -> list[str]:
    agg = report["aggregate"]
    lines = ["", "## Aggregate over envs (Agarwal et al., 2021)", ""]
    if not agg["per_method"]:
        return lines + ["No env has runs of every method."]
    normalized = [e for e, n in agg["human_normalized"].items() if n]
    scale = (f"human-normalized: {', '.join(normalized)}; others on raw scores"
             if normalized else "all on raw scores (no Atari game)")
    lines.append(f"Envs: {', '.join(agg['envs'])}; {scale}. Cells: {agg['note']}.")
    lines += ["", "| method | IQM | 95% CI | optimality gap | 95% CI |",
              "| --- | --- | --- | --- | --- |"]
    for m, a in agg["per_method"].items():
        (ip, il, ih), (gp, gl, gh) = a["iqm"], a["optimality_gap"]
        lines.append(f"| {m} | {f(ip)} | {_interval(il, ih)} | {f(gp)} | "
                     f"{_interval(gl, gh)} |")
    if "aggregate" in figures:
        lines += ["", figures.link("aggregate", "aggregate")]
    return lines


def distractors(report: dict, figures: Figures) -> list[str]:
    if not report["distractors"]:
        return []
    lines = table_section(
        "Distractor evaluations",
        "Several runs: mean over seeds, ± the sample sd over seeds, (min-max). One run: its "
        "value and its 95% interval over episodes (Wilson for success, bootstrap for return).",
        ["env", "split", "method", "runs", "success", "return", "score drop"])
    for env, splits in report["distractors"].items():
        for split, by in splits.items():
            for m, e in by.items():
                cells = [_split_cell(e, key) for key in
                         ("success_rate", "return_mean", "score_drop_fraction")]
                lines.append(f"| {env} | {split} | {m} | {e['runs']} | " + " | ".join(cells)
                             + " |")
    return lines


def paired_differences(report: dict, figures: Figures) -> list[str]:
    paired = report.get("paired", {})
    if not paired.get("per_env"):
        return []
    lines = table_section(
        f"Paired differences: {paired['method']} - {paired['baseline']}",
        "Success on each distractor split, paired by seed over the seeds both methods have: "
        "mean difference, 95% interval (Student-t below 10 seeds), two-sided sign-flip "
        "permutation p-value.",
        ["env", "split", "seeds", "difference", "95% CI", "p", "excludes 0"])
    for env, splits in paired["per_env"].items():
        for split, d in splits.items():
            low, high = d["ci95"]
            lines.append(f"| {env} | {split} | {d['n']} | {d['mean']:+.3f} | "
                         f"[{low:+.3f}, {high:+.3f}] | {d['p']:.3f} | "
                         f"{'yes' if low > 0 or high < 0 else 'no'} |")
    return lines


def rim_selection(report: dict, figures: Figures) -> list[str]:
    if not report.get("selection"):
        return []
    lines = table_section(
        "RIM selection: does the input choose the active RIMs?",
        "Over env 0's last logged rollout: entropy of the active set (0 bits: always the same "
        "RIMs), share of steps on the most frequent set, distinct sets, and the entropy at "
        "episode starts, where the state is zero and the set is a function of the observation "
        "alone.",
        ["env", "method", "seed", "set entropy (bits)", "top set share", "sets",
         "entropy at starts (bits)"])
    for env, by in report["selection"].items():
        for m, rows in by.items():
            for row in rows:
                start = row.get("start_set_entropy_bits")
                lines.append(f"| {env} | {m} | {row['seed']} | "
                             f"{row['set_entropy_bits']:.2f} | {row['top_set_share']:.2f} | "
                             f"{row['distinct_sets']:.0f} | "
                             f"{'' if start is None else f'{start:.2f}'} |")
    return lines


def rim_activation(report: dict, figures: Figures) -> list[str]:
    keys = figures.activation()
    if not keys:
        return []
    lines = ["", "## RIM activation patterns", "",
             "Black: the RIM was active at that step (the last logged rollout of env 0); red "
             "lines: an episode ended.", ""]
    return lines + [figures.link(k, k[1]) for k in keys]


#: the report's sections, in order; each maps (report, figures) to its Markdown lines
SECTIONS = (header, learning_curves, generalization, final_scores, relative_improvement,
            aggregate, distractors, paired_differences, rim_selection, rim_activation)


def _split_cell(entry: dict, key: str) -> str:
    v = entry.get(key)
    if v is None:
        return ""
    if v["sd"] is not None:
        return f"{f(v['mean'])} ± {f(v['sd'])} ({f(v['min'])}-{f(v['max'])})"
    run = entry["per_run"][0]
    ci = run.get({"success_rate": "success_ci95", "return_mean": "return_ci95"}.get(key, ""))
    return f"{f(v['mean'])} [{f(ci[0])}, {f(ci[1])}]" if ci else f(v["mean"])


def _interval(low, high) -> str:
    return "n=1, no interval" if low is None else f"[{f(low)}, {f(high)}]"


def _rel(path: Path, root: Path) -> str:
    return str(Path(path).relative_to(root))
