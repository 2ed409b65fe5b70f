#!/usr/bin/env bash
# test_train_prep.sh AUDIOCLASS SOURCE_DIR - the training data path (models/train/prep.py and
# the dataset readers) on tiny trees in every supported layout, decoded by the real binary.
# Needs /usr/bin/python3 with numpy (python3-numpy); no PyTorch. See train_prep.py.
set -u
exec /usr/bin/python3 "$2/tests/integration/train_prep.py" "$(realpath "$1")" "$(realpath "$2")"
