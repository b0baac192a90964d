"""muq.study_report on a results file with known verdicts: the tables say which budget wins what."""
from muq import study_report as report

def curve_doc():
    "Two tasks, three budgets; key crosses over at 600 updates, pitch is worse until 2400 and never beats the raw mel."
    rows = [dict(condition='mel_rvq', updates=u, audio_hours=round(u * 16 / 3600, 3), seed=0, task=t, score=50.0, valid=50.0, probe='mlp', n_test=10)
            for u in (150, 600, 2400) for t in ('key', 'pitch')]
    calls = {('key', 'muq_vs_random_init'): ('worse', 'better', 'better'), ('key', 'muq_vs_mel_stats'): ('tie', 'tie', 'better'),
             ('pitch', 'muq_vs_random_init'): ('worse', 'worse', 'tie'), ('pitch', 'muq_vs_mel_stats'): ('worse', 'worse', 'worse')}
    verdicts = [dict(updates=u, comparison=c, task=t, diff=0.0, lo=-1.0, hi=1.0, verdict=v)
                for (t, c), vs in calls.items() for u, v in zip((150, 600, 2400), vs)]
    next(v for v in verdicts if v['task'] == 'pitch' and v['updates'] == 600).update(lo=-4.0, hi=2.0)   # the widest at 600
    return dict(rows=rows, verdicts=verdicts)

def test_crossover_table_lists_the_budgets_of_each_call():
    lines = report.crossover_table(curve_doc()).splitlines()
    assert lines[0].startswith('| task | better than random weights at |') and len(lines) == 4
    assert lines[2] == '| key | 600, 2400 | 150 | 2400 | – |'
    assert lines[3] == '| pitch | – | 150, 600 | – | 150, 600, 2400 |'

def test_verdict_counts_tally_each_budget():
    lines = report.verdict_counts(curve_doc()).splitlines()
    assert lines[2:] == ['| 150 (0.667 h) | 0 / 0 / 2 | 0 / 1 / 1 | ±1.0 (key) |', '| 600 (2.667 h) | 1 / 0 / 1 | 0 / 1 / 1 | ±3.0 (pitch) |',
                         '| 2400 (10.667 h) | 1 / 1 / 0 | 1 / 0 / 1 | ±1.0 (key) |']

def test_recipe_table_sets_a_changed_recipe_beside_the_released_one():
    base = curve_doc()
    changed = curve_doc()
    for r in changed['rows']: r['score'] = 60.0 if r['task'] == 'key' else 40.0
    for v in changed['verdicts']:
        if v['comparison'] == 'muq_vs_random_init': v['verdict'] = 'better' if v['task'] == 'key' else 'tie'
    changed['rows'] = [r for r in changed['rows'] if r['updates'] != 600] + [dict(changed['rows'][0], updates=9600)]
    lines = report.recipe_table(changed, base).splitlines()
    assert lines[0] == '| updates | key: changed (released) | pitch: changed (released) | vs random weights: changed (released) |'
    assert lines[2:] == ['| 150 | 60.0 ▲ (50.0 ▼) | 40.0 (50.0 ▼) | 1 / 1 / 0 (0 / 0 / 2) |',     # budgets both curves have
                         '| 2400 | 60.0 ▲ (50.0 ▲) | 40.0 (50.0) | 1 / 1 / 0 (1 / 1 / 0) |']
    changed['eval_corpus'], base['eval_corpus'] = 'eval-340min-2400notes-44a1fa2f', 'eval-100min-2400notes-ac99c5e3'
    assert report.recipe_table(changed, base).startswith('(not comparable: this curve was probed on eval-340min')

def test_training_row_reads_one_codebook_runs(tmp_path):
    "A one-codebook run logs ce/acc_per_codebook without an index; its row still has them, beside its targets' floor."
    import json
    from muq.study_results import training_row
    run = tmp_path / "muq"; (run / "final").mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"last_log": {"loss": 3.03, "acc": 0.24, "ce_per_codebook": 3.03, "acc_per_codebook": 0.24}}))
    (run / "data_stats.json").write_text(json.dumps({"unigram_entropy_0": 4.91, "majority_acc_0": 0.022}))
    r = training_row(run / "final", "mel_rvq_1", 2400, 0)
    assert (r["ce_per_codebook"], r["acc_per_codebook"], r["unigram_entropy"], r["majority_acc"]) == ([3.03], [0.24], [4.91], [0.022])
    (run / "summary.json").write_text(json.dumps({"last_log": {"loss": 3.0, "ce_per_codebook_0": 2.0, "ce_per_codebook_1": 4.0}}))
    assert training_row(run / "final", "mel_rvq_2", 2400, 0)["ce_per_codebook"] == [2.0, 4.0]
    assert "| mel_rvq_1 | 2400 | 3.03 | 4.91 | 24.0% | 2.2% |" in report.training_table({"training": [r]})
