"""Execute notebooks top to bottom in a real Jupyter kernel (what `jupyter nbconvert --execute` does), not in
nbdev_test's in-process runner: a hang or an error fails the run and names the notebook and the cell.

    .venv/bin/python tools/run_notebooks.py                   # every notebook, `#| slow` cells skipped (make test)
    .venv/bin/python tools/run_notebooks.py --slow --write     # all cells; write the outputs back, cleaned (make notebooks)
    .venv/bin/python tools/run_notebooks.py nbs/02a_corpus.ipynb --slow

`#| cuda` cells run only where CUDA is present. Each cell has `--cell-timeout` seconds; each notebook `--nb-timeout`."""
import argparse, copy, json, os, re, shutil, subprocess, sys, tempfile, threading, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAG = re.compile(r'^#\|\s*(slow|cuda|notest)\b', re.M)

def flags(cell) -> set: return set(FLAG.findall(''.join(cell['source']))) if cell['cell_type'] == 'code' else set()

PROGRESS = re.compile(r'\r|\x1b\[[0-9;]*[A-Za-z]|^\s*[^\n]*\d+%\|[^\n]*$|it/s\]', re.M)

def strip_progress(cell):
    "A cell without progress-bar residue: stderr streams that are only tqdm bars are dropped, the rest kept."
    if cell.get('cell_type') != 'code': return cell
    keep = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream' and o.get('name') == 'stderr':
            text = ''.join(o['text']) if isinstance(o['text'], list) else o['text']
            lines = [l for l in text.replace('\r', '\n').split('\n') if l.strip() and not PROGRESS.search(l)]
            if not lines: continue
            o = type(o)(o); o['text'] = '\n'.join(lines) + '\n'
        if o.get('output_type') == 'display_data' and 'application/vnd.jupyter.widget-view+json' in o.get('data', {}):
            plain = o['data'].get('text/plain', ''); plain = ''.join(plain) if isinstance(plain, list) else plain
            if PROGRESS.search(plain): continue                        # a tqdm widget: nothing to read once the cell has run
        keep.append(o)
    cell['outputs'] = keep; return cell

SAVE_COVERAGE = "import coverage\n_c = coverage.Coverage.current()\nif _c: _c.stop(); _c.save()"

def run(path: Path, slow: bool, cuda: bool, cell_timeout: int, nb_timeout: int, write: bool) -> tuple[bool, str]:
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4); orig = copy.deepcopy(nb)
    skip = {'notest'} | (set() if slow else {'slow'}) | (set() if cuda else {'cuda'})
    # not the chapters' closing nbdev_export() cell: kernels running side by side must not rewrite muq/ while others import it
    keep = [i for i, c in enumerate(nb.cells) if not flags(c) & skip and 'nbdev_export()' not in c.source]
    run_nb = copy.deepcopy(nb); run_nb.cells = [run_nb.cells[i] for i in keep]
    if os.environ.get('COVERAGE_PROCESS_START'):     # tools/coverage.sh: a kernel is ended without atexit, so it saves its data
        run_nb.cells.append(nbformat.v4.new_code_cell(SAVE_COVERAGE))
    state = dict(cell=None, t=time.time())
    def on_cell(cell, cell_index): state.update(cell=keep[cell_index] if cell_index < len(keep) else 'coverage', t=time.time())
    from jupyter_client.manager import KernelManager
    sockets = tempfile.mkdtemp(prefix='muq-kernel-')     # IPC sockets: kernels started side by side never race for TCP ports
    km = KernelManager(kernel_name='python3', transport='ipc', ip=str(Path(sockets) / 'kernel'))
    client = NotebookClient(run_nb, km=km, timeout=cell_timeout, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}},
                            on_cell_execute=on_cell)
    try: return _execute(client, path, nb_timeout=nb_timeout, state=state, write=write, cells=(keep, run_nb, orig))
    finally: shutil.rmtree(sockets, ignore_errors=True)

def _execute(client, path, *, nb_timeout, state, write, cells) -> tuple[bool, str]:
    "Run the client's notebook in a thread, watched: (ok, message naming the notebook and the cell)."
    import nbformat
    from nbclient.exceptions import CellExecutionError, CellTimeoutError
    keep, run_nb, orig = cells
    done = threading.Event(); err = []
    def target():
        try: client.execute()
        except (CellExecutionError, CellTimeoutError) as e: err.append(e)
        except Exception as e: err.append(e)
        finally: done.set()
    th = threading.Thread(target=target, daemon=True); t0 = time.time(); th.start()
    if not done.wait(nb_timeout):
        try: client.km.interrupt_kernel(); client.km.shutdown_kernel(now=True)
        except Exception: pass
        return False, f"{path.name}: no progress for {nb_timeout} s, stuck in cell {state['cell']} ({time.time() - state['t']:.0f} s in it)"
    if err:
        msg = str(err[0]).strip().splitlines()
        return False, f"{path.name}: cell {state['cell']}: " + '\n'.join(msg[-15:])
    if write:
        for i, c in zip(keep, run_nb.cells): orig.cells[i] = strip_progress(c)
        nbformat.write(orig, path)
    return True, f"{path.name}: {len(keep)} cells in {time.time() - t0:.0f} s"

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('notebooks', nargs='*'); ap.add_argument('--slow', action='store_true'); ap.add_argument('--write', action='store_true')
    ap.add_argument('--cell-timeout', type=int, default=1800); ap.add_argument('--nb-timeout', type=int, default=3600)
    a = ap.parse_args()
    try:
        import torch; cuda = torch.cuda.is_available()
    except ImportError: cuda = False
    paths = [Path(p) for p in a.notebooks] or sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith('_'))
    failed = []
    for p in paths:
        ok, msg = run(p.resolve(), a.slow, cuda, a.cell_timeout, a.nb_timeout, a.write)
        print(('[ok] ' if ok else '[FAILED] ') + msg, flush=True)
        if not ok: failed.append(p.name)
    if a.write: subprocess.run([str(Path(sys.executable).parent / 'nbdev_clean')], cwd=ROOT, check=True)
    if failed: sys.exit(f"notebooks failed in a real kernel: {failed}")

if __name__ == '__main__':
    main()
