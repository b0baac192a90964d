"""Markdown tables from the committed results files (nbs/results/*.json): what the README and the chapters show.

    .venv/bin/python tools/report.py [nbs/results/curve.json]      # prints every table of the learning curve

Every table says what it was computed from: the number of test items, seeds and the comparison's interval.
"""
import json, sys
from pathlib import Path
import numpy as np

TASK_ORDER = ('key', 'instrument', 'style', 'tempo', 'tags', 'pitch', 'note_instrument', 'pitch_mix', 'beat', 'chord', 'melody')
FRAME_TASKS = ('beat', 'chord', 'melody')      # chapter 8c: a linear probe per frame, scored per clip (mir_eval)
BASELINE_ROWS = ('mel_stats', 'chroma_stats', 'tempogram', 'mel_rvq_codes', 'random_projection_codes', 'label (ceiling)')

def _mark(v) -> str:
    "The arrow of a verdict in a score cell: ▲ better, ▼ worse, nothing for a tie or no verdict."
    return '' if v is None else {'better': ' ▲', 'worse': ' ▼', 'tie': ''}[v['verdict']]

def results_json(doc, root=Path(__file__).resolve().parents[1]) -> str:
    "A results file's text: indented JSON whose paths inside the checkout `root` are written relative to it."
    return json.dumps(doc, indent=1).replace(str(root) + "/", "")

def _tasks(d): return [t for t in TASK_ORDER if any(r['task'] == t for r in d['rows'])]

def _cell(vals) -> str:
    if not vals: return '–'
    return f"{np.mean(vals):.1f}" if len(vals) == 1 else f"{np.mean(vals):.1f} ± {np.std(vals):.1f}"

def budgets(d, cond='mel_rvq') -> list:
    return sorted({r['updates'] for r in d['rows'] if r['condition'] == cond and r['updates']})

def scores(d, cond, u, task, probe=None) -> list:
    "Scores of a condition at `u` updates: the weighted-layer MLP probe's, or the linear frame probe's on the frame tasks."
    probe = probe or ('linear' if task in FRAME_TASKS else 'mlp')
    return [r['score'] for r in d['rows'] if r['condition'] == cond and r['updates'] == u and r['task'] == task and r['probe'] == probe]

def verdict(d, u, cmp, task):
    return next((v for v in d['verdicts'] if v['updates'] == u and v['comparison'] == cmp and v['task'] == task), None)

def curve_table(d, cond='mel_rvq') -> str:
    "Tasks x budgets: the weighted-layer MLP probe (x100, mean ± std over pretraining seeds), random weights and raw mel beside."
    us, tasks = budgets(d, cond), _tasks(d)
    n = {t: next(r['n_test'] for r in d['rows'] if r['task'] == t) for t in tasks}
    head = '| task (test items) | random weights | ' + ' | '.join(f'{u} updates' for u in us) + ' | raw-mel statistics |'
    lines = [head, '|' + '---|' * (len(us) + 3)]
    for t in tasks:
        cells = [_cell(scores(d, cond, u, t)) + _mark(verdict(d, u, f"{'muq' if cond == 'mel_rvq' else cond}_vs_random_init", t)) for u in us]
        lines.append(f"| {t} ({n[t]}) | {_cell(scores(d, 'random_init', 0, t))} | " + ' | '.join(cells) + f" | {_cell(scores(d, 'mel_stats', None, t))} |")
    return '\n'.join(lines)

def tally(d, u, cmp, tasks=None) -> list:
    "[better, tie, worse] over the tasks (all, or `tasks`): the verdicts of comparison `cmp` at `u` updates."
    vs = [v for v in d['verdicts'] if v['updates'] == u and v['comparison'] == cmp and (tasks is None or v['task'] in tasks)]
    return [sum(v['verdict'] == k for v in vs) for k in ('better', 'tie', 'worse')]

def verdict_counts(d) -> str:
    "Per budget: better / tie / worse against random weights and against the raw mel, over the tasks."
    lines = ['| updates (audio seen) | vs random weights: better / tie / worse | vs raw mel: better / tie / worse '
             '| widest 95% interval vs random weights (half-width, task) |', '|---|---|---|---|']
    for u in budgets(d):
        hours = next(r['audio_hours'] for r in d['rows'] if r['updates'] == u)
        a, b = tally(d, u, 'muq_vs_random_init'), tally(d, u, 'muq_vs_mel_stats')
        vs = [v for v in d['verdicts'] if v['updates'] == u and v['comparison'] == 'muq_vs_random_init']
        w = max(vs, key=lambda v: v['hi'] - v['lo'], default=None)
        wide = '–' if w is None else f"±{(w['hi'] - w['lo']) / 2:.1f} ({w['task']})"
        lines.append(f"| {u} ({hours:g} h) | {a[0]} / {a[1]} / {a[2]} | {b[0]} / {b[1]} / {b[2]} | {wide} |")
    return '\n'.join(lines)

def diffs_table(d, cmp) -> str:
    "Budget x task: difference x100 [95% interval] of one comparison, verdict in bold."
    tasks = _tasks(d); us = sorted({v['updates'] for v in d['verdicts'] if v['comparison'] == cmp})
    lines = ['| updates | ' + ' | '.join(tasks) + ' |', '|' + '---|' * (len(tasks) + 1)]
    for u in us:
        cells = []
        for t in tasks:
            v = verdict(d, u, cmp, t)
            cells.append('–' if v is None else f"{v['diff']:+.1f} [{v['lo']:+.1f}, {v['hi']:+.1f}]" + ('' if v['verdict'] == 'tie' else f" **{v['verdict']}**"))
        lines.append(f"| {u} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines)

def crossover_table(d) -> str:
    "Per task: the budgets at which MuQ is better / worse than random weights and than the raw-mel statistics (paired bootstrap)."
    us = budgets(d)
    at = lambda t, cmp, k: ', '.join(str(u) for u in us if (v := verdict(d, u, cmp, t)) and v['verdict'] == k) or '–'
    lines = ['| task | better than random weights at | worse than random weights at | better than raw mel at | worse than raw mel at |',
             '|---|---|---|---|---|']
    for t in _tasks(d):
        lines.append(f"| {t} | " + ' | '.join(at(t, cmp, k) for cmp in ('muq_vs_random_init', 'muq_vs_mel_stats') for k in ('better', 'worse')) + ' |')
    return '\n'.join(lines)

def baselines_table(d) -> str:
    tasks = _tasks(d)
    lines = ['| features | ' + ' | '.join(tasks) + ' |', '|' + '---|' * (len(tasks) + 1)]
    for b in ('random_init',) + BASELINE_ROWS:
        u = 0 if b == 'random_init' else None
        lines.append(f"| {b} | " + ' | '.join(_cell(scores(d, b, u, t)) for t in tasks) + ' |')
    return '\n'.join(lines)

def training_table(d, key='training') -> str:
    "Per budget (or sweep setting): masked cross-entropy against the unigram entropy of the targets, and accuracy against the majority code (means over codebooks)."
    lines = ['| condition | updates | masked CE (nats) | unigram entropy of the targets | masked accuracy | majority-code accuracy |', '|---|---|---|---|---|---|']
    for t in sorted(d.get(key, []), key=lambda t: (t['condition'], t['updates'], t['seed'])):
        if t['seed'] or not t['ce_per_codebook']: continue
        lines.append(f"| {t['condition']} | {t['updates']} | {np.mean(t['ce_per_codebook']):.2f} | {np.mean(t['unigram_entropy']):.2f} | "
                     f"{100 * np.mean(t['acc_per_codebook']):.1f}% | {100 * np.mean(t['majority_acc']):.1f}% |")
    return '\n'.join(lines)

def layers_table(d, task='key') -> str:
    "Linear probe of every hidden state (0 = conv output), x100: where the task's information sits, along the curve."
    rows = [r for r in d['layers'] if r['task'] == task and r['seed'] == 0]
    L = sorted({int(r['layer']) for r in rows}); conds = sorted({(r['condition'], r['updates']) for r in rows}, key=lambda c: (c[0] != 'random_init', c[0], c[1]))
    lines = ['| model | ' + ' | '.join(f'layer {l}' for l in L) + ' |', '|' + '---|' * (len(L) + 1)]
    for c, u in conds:
        cell = lambda l: next((f"{r['score']:.1f}" for r in rows if (r['condition'], r['updates']) == (c, u) and int(r['layer']) == l), '–')
        lines.append(f"| {c}{'' if c == 'random_init' else f' @ {u}'} | " + ' | '.join(cell(l) for l in L) + ' |')
    return '\n'.join(lines)

def label_efficiency_table(d) -> str:
    le = d.get('label_efficiency') or []
    if not le: return '(not measured yet)'
    tasks = [t for t in TASK_ORDER if any(r['task'] == t for r in le)]; ns = sorted({r['per_class'] for r in le}, key=lambda n: (n == 0, n))
    lines = ['| task | ' + ' | '.join(f"{'all' if n == 0 else n} per class: pretrained / random" for n in ns) + ' |', '|' + '---|' * (len(ns) + 1)]
    for t in tasks:
        cell = lambda n: ' / '.join(_cell([r['score'] for r in le if r['task'] == t and r['per_class'] == n and r['encoder'] == e]) for e in ('muq', 'random_init_seed0'))
        lines.append(f"| {t} | " + ' | '.join(cell(n) for n in ns) + ' |')
    return '\n'.join(lines)

def sweep_table(d) -> str:
    sw = d.get('sweep') or []
    if not sw: return '(not measured yet)'
    tasks = [t for t in _tasks(d) if t not in FRAME_TASKS]; names = list(dict.fromkeys(r['condition'] for r in sw)); u = sw[0]['updates']
    counts = lambda cmp: ' / '.join(map(str, tally(d, u, cmp, tasks))) if any(tally(d, u, cmp, tasks)) else '–'
    lines = ['| setting (vs the recipe at the same budget) | ' + ' | '.join(tasks) + ' | vs random weights: better / tie / worse |',
             '|' + '---|' * (len(tasks) + 2)]
    lines.append(f"| recipe ({u} updates) | " + ' | '.join(_cell(scores(d, 'mel_rvq', u, t)) for t in tasks) + f" | {counts('muq_vs_random_init')} |")
    for n in names:
        cells = []
        for t in tasks:
            s = [r['score'] for r in sw if r['condition'] == n and r['task'] == t and r['probe'] == 'mlp']; v = verdict(d, u, f'{n}_vs_recipe', t)
            cells.append(_cell(s) + _mark(v))
        lines.append(f"| {n} | " + ' | '.join(cells) + f" | {counts(f'{n}_vs_random_init')} |")
    return '\n'.join(lines)

def seed_call(a, b) -> str:
    "Mean of `a` minus mean of `b` (x100 values over seeds) ± their combined std, called better/worse only beyond it."
    if not a or not b: return '–'
    diff, s = np.mean(a) - np.mean(b), float(np.hypot(np.std(a), np.std(b)))
    return f"{diff:+.1f} ± {s:.1f}" + ('' if abs(diff) <= s else ' **better**' if diff > 0 else ' **worse**')

def ablation_scores(d, cond, task) -> list:
    return [r['score'] for r in d['rows'] if r['condition'] == cond and r['task'] == task]

def ablation_table(d) -> str:
    "Condition x task: the weighted-layer linear probe (x100, mean ± std over pretraining seeds)."
    tasks, conds = _tasks(d), list(dict.fromkeys(r['condition'] for r in d['rows']))
    lines = ['| condition | ' + ' | '.join(tasks) + ' |', '|' + '---|' * (len(tasks) + 1)]
    fmt = lambda v: f"{np.mean(v):.1f} ± {np.std(v):.1f}" if v else '–'
    return '\n'.join(lines + [f"| {c} | " + ' | '.join(fmt(ablation_scores(d, c, t)) for t in tasks) + ' |' for c in conds])

def ablation_versus(d, ref) -> str:
    "Every condition against `ref`: difference of the seed means ± the combined std over seeds, called only beyond it."
    tasks, conds = _tasks(d), list(dict.fromkeys(r['condition'] for r in d['rows']))
    lines = [f'| condition vs {ref} | ' + ' | '.join(tasks) + ' | better / tie / worse |', '|' + '---|' * (len(tasks) + 2)]
    for c in conds:
        if c == ref: continue
        cells = [seed_call(ablation_scores(d, c, t), ablation_scores(d, ref, t)) for t in tasks]
        n = [sum(k in x for x in cells) for k in ('better', 'worse')]
        lines.append(f"| {c} | " + ' | '.join(cells) + f" | {n[0]} / {len(tasks) - sum(n)} / {n[1]} |")
    return '\n'.join(lines)

def probe_snapshot(probe) -> dict:
    "What a `python -m muq.probe` run left in folder `probe`: its tables (markdown), verdicts and provenance."
    probe = Path(probe); v = json.loads((probe / 'verdicts.json').read_text())
    tables = [b for b in (probe / 'results.md').read_text().split('\n\n') if b.lstrip().startswith('|')]
    return dict(markdown={'probe_mlp': tables[0], 'probe_linear': tables[1] if len(tables) > 2 else '', 'verdicts': tables[-1]},
                verdicts=v['verdicts'], probe_provenance=v['provenance'])

def recipe_table(d, base) -> str:
    """Budget x task: the curve of a changed recipe `d` beside the released recipe's `base` (weighted-layer MLP probe x100,
    seed means; ▲/▼: better/worse than random weights beyond each curve's own paired bootstrap), and each one's counts."""
    tasks, us = _tasks(d), [u for u in budgets(d) if u in budgets(base)]
    cell = lambda e, u, t: _cell(scores(e, 'mel_rvq', u, t)) + _mark(verdict(e, u, 'muq_vs_random_init', t))
    n = lambda e, u: ' / '.join(map(str, tally(e, u, 'muq_vs_random_init')))
    lines = ['| updates | ' + ' | '.join(f'{t}: changed (released)' for t in tasks) + ' | vs random weights: changed (released) |',
             '|' + '---|' * (len(tasks) + 2)]
    for u in us:
        cells = [f"{cell(d, u, t)} ({cell(base, u, t)})" for t in tasks]
        lines.append(f"| {u} | " + ' | '.join(cells) + f" | {n(d, u)} ({n(base, u)}) |")
    return '\n'.join(lines)

def curve_tables(d) -> dict:
    "NAME -> markdown: every table of the learning curve (the README's `<!-- table:NAME -->` blocks, in print order)."
    return {"curve": curve_table(d), "curve:counts": verdict_counts(d), "curve:crossover": crossover_table(d),
            "curve:vs_random": diffs_table(d, "muq_vs_random_init"), "curve:vs_mel": diffs_table(d, "muq_vs_mel_stats"),
            "curve:vs_rp": diffs_table(d, "muq_vs_random_projection"), "curve:baselines": baselines_table(d), "curve:training": training_table(d),
            "curve:key_layers": layers_table(d, "key"), "curve:label_efficiency": label_efficiency_table(d), "curve:sweep": sweep_table(d),
            "curve:rp": curve_table(d, "random_projection")}

def all_tables(d) -> str:
    return '\n\n'.join(curve_tables(d).values())

if __name__ == "__main__":
    p = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "nbs" / "results" / "curve.json")
    print(all_tables(json.loads(p.read_text())))
