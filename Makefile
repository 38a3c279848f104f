# Two commands do everything on a fresh machine (Python >= 3.9 with venv):
#   make demo   set up .venv, build the demo data, train both phases, test them, write the comparison image (with the
#               shipped SRResNet and SRGAN beside them)
#   make test   set up .venv and run the test suite, one worker per core (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test clean-demo

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'setuptools>=70' wheel
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e '.[test,export,lpips]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m srgan_plugin.prepare demo
	$(PY) -m basicsr.train -opt options/demo/train_srresnet_demo.yml
	$(PY) -m basicsr.train -opt options/demo/train_srgan_demo.yml
	$(PY) -m basicsr.test -opt options/demo/test_srresnet_demo.yml
	$(PY) -m basicsr.test -opt options/demo/test_srgan_demo.yml
	$(PY) -m srgan_plugin.upscale --model srresnet -i datasets/demo/val/LR_bicubic/X4 -o results/demo_shipped_srresnet \
		--suffix ''
	$(PY) -m srgan_plugin.upscale --model srgan -i datasets/demo/val/LR_bicubic/X4 -o results/demo_shipped_srgan \
		--suffix ''
	$(PY) -m srgan_plugin.visualize --lr datasets/demo/val/LR_bicubic/X4 --hr datasets/demo/val/HR \
		--sr 'demo SRResNet=results/test_demo_SRResNet_x4/visualization/demo_val' \
		--sr 'demo SRGAN=results/test_demo_SRGAN_x4/visualization/demo_val' \
		--sr 'shipped SRResNet=results/demo_shipped_srresnet' \
		--sr 'shipped SRGAN=results/demo_shipped_srgan' \
		-o results/demo_comparison.png

test: setup
	$(PY) -m pytest -n auto --dist loadfile

clean-demo:
	rm -rf datasets/demo experiments/demo_* results/test_demo_* results/demo_shipped_* results/demo_comparison.png
