"""Bad input across the package: every check below feeds one wrong argument, file or setting and asserts the error
names it and says what is wrong (in-process, a second each)."""
import json, math, re
from pathlib import Path
import numpy as np, pytest, soundfile as sf, torch
from muq.core import Config, ConfigError, crash_point, weights_digest
from muq.audio import LogMel, MelConfig, load_audio, log_mel, mel_stats, normalize_mel, denormalize_mel
from muq.data import read_manifest, manifest_from_folder, write_manifest, data_items
from muq.model import MuQ, MuQConfig, make_tokenizer, resolve_checkpoint
from muq.mel_rvq import MelRVQ, MelRVQConfig
from muq.stages import resolve_config, get_stage
from dataclasses import dataclass


@dataclass
class Inner(Config):
    x: int = 1


@dataclass
class Demo(Config):
    "A config with every kind of field the command line can set."
    n: int = 1
    opt: int | None = None
    either: int | str = 0
    pair: tuple[int, int] = (1, 2)
    names: list[str] = None
    flag: bool = False
    inner: Inner = None
    fn: object = None
    presets = {'small': dict(n=2)}


def test_config_parses_each_field_type_and_names_the_bad_one():
    c = Demo(inner=Inner()).override(['opt=none', 'either=abc', 'pair=3,4', 'names=a, b', 'flag=yes', '--n=5'])
    assert (c.opt, c.either, c.pair, c.names, c.flag, c.n) == (None, 'abc', (3, 4), ['a', 'b'], True, 5)
    assert Demo(inner=Inner()).override(['opt=7', 'either=3']).opt == 7
    for item, msg in [('n=1.5', "n='1.5': expected int"), ('pair=1,2,3', "pair='1,2,3': expected tuple[int, int]"),
                      ('pair=a,b', "expected tuple[int, int]"), ('flag=maybe', "flag='maybe': expected bool"),
                      ('opt=x', "opt='x': expected int | None"), ('inner=3', "'inner' is a section"),
                      ('fn=x', "fields of type object cannot be set from the command line"), ('n', "override 'n' is not key=value"),
                      ('nope=1', "nope")]:
        with pytest.raises(ConfigError, match=re.escape(msg)):
            Demo(inner=Inner()).override([item])
    with pytest.raises(ConfigError, match=r"unknown Demo preset 'big'; valid: \['small'\]"):
        Demo.preset('big')
    with pytest.raises(ConfigError, match=r"unknown Demo keys \['m'\]"):
        Demo.from_dict({'m': 1})


def test_crash_point_refuses_a_misspelt_signal_or_count(monkeypatch):
    monkeypatch.setenv('MUQ_CRASH_AT', 'step@2')
    monkeypatch.setenv('MUQ_CRASH_SIGNAL', 'KIL')
    with pytest.raises(ValueError, match="MUQ_CRASH_SIGNAL='KIL': not a signal name"):
        crash_point('step')
    monkeypatch.setenv('MUQ_CRASH_SIGNAL', 'TERM')
    monkeypatch.setenv('MUQ_CRASH_AT', 'step@two')
    with pytest.raises(ValueError, match="MUQ_CRASH_AT='step@two': expected EVENT or EVENT@N"):
        crash_point('step')
    monkeypatch.setenv('MUQ_CRASH_AT', 'other')
    assert crash_point('step') is None                                      # another event: nothing happens


def test_audio_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'missing.wav'}: no such audio file"):
        load_audio(tmp_path / 'missing.wav')
    with open(__file__, 'rb') as f, pytest.raises(ValueError, match="an open file needs info="):
        load_audio(f)
    with pytest.raises(ValueError, match="waveform of 1000 samples is too short for n_fft=2048"):
        LogMel()(torch.zeros(1000))
    with pytest.raises(ValueError, match="mel_stats: no audio given"):
        mel_stats([])


def test_mel_stats_stream_equals_the_statistics_of_all_frames(tmp_path):
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(n).astype(np.float32) * 0.1 for n in (24000, 36000))
    sf.write(tmp_path / 'b.wav', b, 24000)
    mean, std, n = mel_stats([torch.from_numpy(a), tmp_path / 'b.wav'])       # a tensor and a path
    allm = torch.cat([log_mel(torch.from_numpy(a)).flatten(), log_mel(load_audio(tmp_path / 'b.wav')).flatten()]).double()
    assert n == allm.numel() == 128 * (100 + 150)
    assert math.isclose(mean, allm.mean().item(), rel_tol=1e-9) and math.isclose(std, allm.std(unbiased=False).item(), rel_tol=1e-6)
    z = torch.randn(2, 128, 10)
    assert torch.allclose(normalize_mel(denormalize_mel(z)), z, atol=1e-5)   # the inverse of the official normalisation


def test_manifest_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such manifest"):
        read_manifest(tmp_path / 'none.jsonl')
    (tmp_path / 'm.jsonl').write_text('{"path": "a.wav"}\n\n{"path": \n')
    with pytest.raises(ValueError, match=r"m\.jsonl:3: not valid JSON"):
        read_manifest(tmp_path / 'm.jsonl')
    (tmp_path / 'n.jsonl').write_text('{"file": "a.wav"}\n')
    with pytest.raises(ValueError, match=r"n\.jsonl:1: entry has no 'path'"):
        read_manifest(tmp_path / 'n.jsonl')
    with pytest.raises(FileNotFoundError, match="not a directory"):
        manifest_from_folder(tmp_path / 'nothing')
    sf.write(tmp_path / 'x.wav', np.zeros(2400, np.float32), 24000)
    items = manifest_from_folder(tmp_path, out=tmp_path / 'folder.jsonl')      # written where asked
    assert [Path(i['path']).name for i in read_manifest(tmp_path / 'folder.jsonl')] == [Path(i['path']).name for i in items] == ['x.wav']
    write_manifest(items, tmp_path / 'two.jsonl')
    assert len(data_items(f"{tmp_path / 'folder.jsonl'},{tmp_path / 'two.jsonl'}")) == 2   # comma-separated manifests join


def test_model_and_tokenizer_errors():
    with pytest.raises(ConfigError, match=r"model.targets='bert'; valid"):
        make_tokenizer(_with(MuQConfig.preset('tiny'), targets='bert'))
    rvq = MelRVQ(MelRVQConfig.preset('tiny'))
    with pytest.raises(ValueError, match=r"MelRVQ expects stacked mel \(b, t, 512\), got shape \(2, 3\)"):
        rvq.encode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="MelRVQ expects a float tensor"):
        rvq.encode(torch.zeros(1, 2, 512, dtype=torch.long))
    with pytest.raises(ValueError, match=r"decode expects codes \(b, <= 8, t\)"):
        rvq.decode(torch.zeros(1, 9, 4, dtype=torch.long))
    m = MuQ(_with(MuQConfig.preset('tiny'), targets='precomputed'))
    with pytest.raises(ValueError, match="model.targets='precomputed': this model has no tokenizer"):
        m.model.tokenize(torch.zeros(1, 24000))


def _with(cfg, **kw):
    return cfg.from_dict({**cfg.to_dict(), **kw})


def test_reconstruction_loss_adds_to_the_masked_ce():
    torch.manual_seed(0)
    m = MuQ(_with(MuQConfig.preset('tiny'), recon_loss_ratio=0.5)).model.train()
    out = m.train_forward(torch.randn(2, 48000) * 0.1, generator=torch.Generator().manual_seed(0))
    assert out['recon'].item() > 0 and torch.isclose(out['loss'], out['ce'] + out['recon'])


def test_checkpoint_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'none'}: no such checkpoint directory"):
        resolve_checkpoint(tmp_path / 'none')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        MuQ.from_pretrained(tmp_path / 'empty')
    with pytest.raises(FileNotFoundError, match="no model.safetensors or pytorch_model.bin"):
        weights_digest(tmp_path / 'empty')
    torch.manual_seed(0)
    MuQ(MuQConfig.preset('tiny')).save_pretrained(tmp_path / 'ck')
    m = MuQ.from_pretrained(tmp_path / 'ck', mask_prob=0.5)                  # overrides of the saved config
    assert m.config.mask_prob == 0.5


def test_training_settings_name_the_bad_one():
    for item, msg in [('optim.optimizer=sgd', "optim.optimizer='sgd'; valid"), ('optim.schedule=step', "optim.schedule='step'; valid"),
                      ('data.batch_size=0', "data.batch_size=0: must be >= 1")]:
        with pytest.raises(ConfigError, match=msg):
            resolve_config('muq', 'tiny', [item])
    with pytest.raises(ConfigError, match="--stage 'bert': valid stages are"):
        get_stage("bert")
    with pytest.raises(ConfigError, match="--preset 'huge': valid presets are"):
        resolve_config('muq', 'huge')
    assert resolve_config('rvq', 'tiny', ['rvq.optim.lr=0.01', 'muq.optim.lr=0.5']).optim.lr == 0.01   # stage-prefixed settings


def test_command_lines_refuse_missing_or_bad_arguments(tmp_path):
    from muq.extract import extract_cli, pool_frames, _layers
    from muq.targets import targets_cli
    from muq.shards import shards_cli
    from muq.export import export_cli
    for kw, msg in [(dict(), "--ckpt and --out are required"), (dict(ckpt='c', out='o', pool='max'), "--pool 'max': use one of"),
                    (dict(ckpt='c', out='o', dtype='int8'), "--dtype 'int8': use float32, float16 or bfloat16")]:
        with pytest.raises(ConfigError, match=msg):
            extract_cli(**kw)
    h = torch.randn(5, 2, 3)
    assert pool_frames(h, 'meanstd').shape == (1, 2, 6) and torch.allclose(pool_frames(h, 'meanstd')[0, :, 3:], h.std(0, unbiased=False))
    with pytest.raises(ConfigError, match="--pool 'max'"):
        pool_frames(h, 'max')
    with pytest.raises(ConfigError, match="--layers 'last': 'all' or comma-separated integers"):
        _layers('last', 3)
    for kw, msg in [(dict(), "--ckpt and --out are required"), (dict(ckpt='c', out='o', kind='mfcc'), "--kind 'mfcc': use latent or mel"),
                    (dict(ckpt='c', out='o', part='half'), "--part 'half': expected i/n"), (dict(ckpt='c', out='o', part='4/4'), "need 0 <= i < n")]:
        with pytest.raises(ConfigError, match=msg):
            targets_cli(**kw)
    with pytest.raises(ConfigError, match="--out DIR is required"):
        shards_cli()
    with pytest.raises(ConfigError, match="--onnx OUT.onnx and --ckpt DIR are required"):
        export_cli()


def test_probe_settings_and_tasks_name_the_bad_one(tmp_path):
    from muq.probe import normalize_features, with_tasks, probe_cli, store_features
    X = {s: torch.randn(6, 1, 3) for s in ('train', 'valid', 'test')}
    for bad in ('pca', 'whiten:0', 'whiten:x', 'zscore:2'):
        with pytest.raises(ValueError, match=f"norm='{bad}': use 'whiten', 'whiten:K' \\(K >= 1\\), 'zscore' or 'none'"):
            normalize_features(X, bad)
    assert normalize_features(X, 'whiten:2')['test'].shape == (6, 1, 2)
    for spec, msg in [('genre', "task 'genre': expected name=set:field:kind"), ('genre=clips:genre:ranking', "kind 'ranking' not in"),
                      ('genre=clips:genre:multiclass:max', "pool 'max' not in")]:
        with pytest.raises(ValueError, match=msg):
            with_tasks([spec])
    assert with_tasks(['genre=gtzan:genre:multiclass'])['genre'] == ('gtzan', 'genre', 'multiclass', 'mean')
    with pytest.raises(ConfigError, match=r"--tasks: unknown \['beat'\]"):
        probe_cli(ckpt=str(tmp_path), tasks='beat')
    with pytest.raises(ConfigError, match="no such checkpoint directory"):
        probe_cli(ckpt=str(tmp_path / 'none'))
    with pytest.raises(ConfigError, match="not a feature store"):
        store_features(tmp_path, [])


def test_mulan_errors_name_the_setting_or_folder(tmp_path):
    from muq.mulan import MuQMuLan, MuQMuLanConfig, TextTower
    cfg = MuQMuLanConfig.preset('tiny')
    with pytest.raises(ConfigError, match="text.name='tiny' needs text.vocab"):
        TextTower(cfg.override(['text.name=tiny']))
    with pytest.raises(ConfigError, match=r"text.name='bert'; valid"):
        TextTower(cfg.override(['text.name=bert']))
    (tmp_path / 'e').mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        MuQMuLan.from_pretrained(tmp_path / 'e')
    (tmp_path / 'e' / 'config.json').write_text(json.dumps({'something': 1}))
    from safetensors.torch import save_file
    save_file({'w': torch.zeros(1)}, str(tmp_path / 'e' / 'model.safetensors'))
    with pytest.raises(ValueError, match="neither a MuQ-MuLan config of this package nor an official one"):
        MuQMuLan.from_pretrained(tmp_path / 'e')
    m = MuQMuLan(cfg.override(['text.name=tiny', 'text.vocab=[PAD],[UNK],piano']))
    with pytest.raises(TypeError, match="texts must be a list of strings"):
        m(texts='piano')
    with pytest.raises(RuntimeError, match="Invalid dimensions: audio 3, text 2"):
        m.calc_similarity(torch.zeros(1, 2, 3), torch.zeros(2, 3))
