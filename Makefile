# memxbar: every target sets the machine up first (idempotent, quick when already done).
PY := .venv/bin/python
JOBS ?= 2

.PHONY: setup report test bench clean

setup:
	@bash tools/setup.sh

report: setup  ## the main job: the hardware-aware training study under results/study
	@$(PY) -m training.cli study --out results

test: setup  ## the whole test suite: unit/physics tests and the executed notebooks
	@OMP_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) --dist loadgroup tests notebooks --nbmake --nbmake-timeout=900 -q

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf results .pytest_cache
