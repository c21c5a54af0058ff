# memxbar: every target sets the machine up first (idempotent, quick when already done).
PY := .venv/bin/python
JOBS ?= 2

.PHONY: setup report test bench clean

setup:
	@bash tools/setup.sh

report: setup  ## the main job: the quick robustness study (studies/quick.toml) -> results/quick/report/
	@$(PY) -m training.cli sweep run studies/quick.toml --out results/quick; status=$$?; \
	$(PY) -m training.cli sweep report results/quick && exit $$status

test: setup  ## the whole test suite: unit/physics tests and the executed notebooks
	@OMP_NUM_THREADS=1 $(PY) -m pytest -n $(JOBS) --dist loadgroup tests notebooks --nbmake --nbmake-timeout=900 -q

bench: setup
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf results .pytest_cache
