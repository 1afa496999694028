# Shared by the layer Makefiles (sam build with `BuildMethod: makefile`, and bench/layer_sizes.py).
#
# Installs wheels for the Lambda target, whatever the build host is: CPython 3.12 on x86_64
# Amazon Linux 2023, whose glibc 2.34 runs manylinux2014 up to manylinux_2_34 wheels. Binary
# wheels only, so nothing is compiled for the wrong platform. boto3/botocore are never listed:
# the runtime has them, and a copy in /opt/python would shadow the runtime's matching pair.
PYTHON ?= python3
# --no-compile: the host's pip would write bytecode for its own Python (say cpython-311), which
# Lambda's 3.12 ignores; it only costs size.
LAMBDA_PIP := $(PYTHON) -m pip install --quiet --disable-pip-version-check --upgrade --no-compile \
	--implementation cp --python-version 3.12 --only-binary=:all: \
	--platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_34_x86_64
