#!/usr/bin/env bash
# test_export.sh AUDIOCLASS SOURCE_DIR - bring your own model: golden-zoo blocks exported by
# the command line (models/train/export.py --module, torch.fx + the parity check), then
# served: `audioclass classify` and the server answer what PyTorch computes from the same
# decoded audio (<= 1e-4 on the probabilities). Refusals: an unsupported module is named by
# its path and no file is left; a failed parity check deletes the file; a model file whose
# graph was tampered with is refused by the engine at load, naming the node.
# Skips (passes with a message) when /usr/bin/python3 has no torch.
set -u
EXE=$1
SRC=$2
source "$SRC/tests/integration/lib.sh"
PY=/usr/bin/python3
if ! "$PY" -c "import torch, numpy" 2>/dev/null; then
  echo "SKIP: $PY has no torch (Debian package python3-torch); export tests not run"
  exit 0
fi
require_tools curl jq
T=$(mktemp -d)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT
EXPORT="$PY $SRC/models/train/export.py"
ZOO=$SRC/tests/golden/zoo_blocks.py
export AUDIOCLASS_BIN=$EXE OMP_NUM_THREADS=2
LABELS=a,b,c,d,e

# seeded weights saved as a state dict, so that PyTorch can be asked about the same network
weights() { # CLASS OUT
  "$PY" - "$ZOO" "$1" "$2" <<'EOF'
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("zoo_blocks", sys.argv[1])
zoo = importlib.util.module_from_spec(spec); spec.loader.exec_module(zoo)
torch.manual_seed(7)
net = getattr(zoo, sys.argv[2])()
with torch.no_grad():  # non-trivial batch-norm statistics
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.2, 0.2); m.running_var.uniform_(0.5, 2.0)
torch.save(net.state_dict(), sys.argv[3])
EOF
}

# PyTorch's clip probabilities for a model file's policy on `audioclass decode` output
torch_probs() { # CLASS WEIGHTS MODEL DECODED_PREFIX
  "$PY" - "$SRC" "$@" <<'EOF'
import json, sys
import numpy as np, torch
src, cls, weights, model, prefix = sys.argv[1:]
sys.path.insert(0, src + "/models/train")
import export, fx_export
net = export.load_module(src + "/tests/golden/zoo_blocks.py:" + cls, {}, weights).double()
_, md = export.read_safetensors(model)
shape, policy = json.loads(md["input_shape"]), json.loads(md["policy"])
clip = np.fromfile(prefix + ".f32", "<f4")
win = export.policy_windows(clip, policy)
with torch.no_grad():
    out = net(torch.from_numpy(win.astype(np.float64)).reshape([len(win)] + shape))
print(json.dumps(fx_export.probs_of(out, fx_export.last_op(net)).mean(0).tolist()))
EOF
}

write_wav "$T/clip.wav" 2 16000 1

for cls in TCN ConvNeXt2d CNNLSTM; do
  case $cls in
    TCN) shape=1,400 ;;
    ConvNeXt2d) shape=1,1,512 ;;
    CNNLSTM) shape=1,480 ;;
  esac
  weights "$cls" "$T/$cls.pt"
  $EXPORT --module "$ZOO:$cls" --weights "$T/$cls.pt" --input-shape "$shape" --sample-rate 8000 \
    --labels "$LABELS" --out "$T/$cls.safetensors" >"$T/$cls.export" 2>&1
  check "$cls: export --module exits 0" test $? -eq 0
  check "$cls: export reports the parity check" grep -q "parity with PyTorch on 4 random inputs" "$T/$cls.export"
  check_eq "$cls: file is format 2" 2 "$("$EXE" info "$T/$cls.safetensors" 2>/dev/null | awk '/^format version/ {print $NF}')"

  # classify vs PyTorch on the same decoded, resampled audio
  "$EXE" decode --rate 8000 --out "$T/dec$cls" "$T/clip.wav" 2>/dev/null
  want=$(torch_probs "$cls" "$T/$cls.pt" "$T/$cls.safetensors" "$T/dec$cls")
  "$EXE" classify --model "$T/$cls.safetensors" --top-k 5 "$T/clip.wav" >"$T/$cls.json"
  check "$cls: classify exits 0" test $? -eq 0
  got=$(jq -c '[.predictions[] | {(.label): .score}] | add | [.a, .b, .c, .d, .e]' "$T/$cls.json")
  diff=$(jq -n --argjson a "$want" --argjson b "$got" '[range(5) | ($a[.] - $b[.]) | fabs] | max')
  check "$cls: classify = PyTorch within 1e-4 (max diff $diff)" jq -ne "$diff <= 1e-4"

  # the server gives the same answer
  start "srv$cls" --model "$cls=$T/$cls.safetensors"
  code=$(req "$T/$cls.http" "/classify?model=$cls&top_k=5" --data-binary @"$T/clip.wav" -H 'Content-Type: audio/wav')
  check_eq "$cls: server 200" 200 "$code"
  srv=$(jq -c '[.predictions[] | {(.label): .score}] | add | [.a, .b, .c, .d, .e]' "$T/$cls.http")
  diff=$(jq -n --argjson a "$want" --argjson b "$srv" '[range(5) | ($a[.] - $b[.]) | fabs] | max')
  check "$cls: server = PyTorch within 1e-4 (max diff $diff)" jq -ne "$diff <= 1e-4"
  stop
done

# a plain nn.Sequential (a function returning one), softmax output, default weights
$EXPORT --module "$ZOO:sequential" --input-shape 1,400 --sample-rate 8000 --labels "$LABELS" \
  --out "$T/seq.safetensors" >"$T/seq.export" 2>&1
check "nn.Sequential exports" test $? -eq 0

# the exporter's own refusals and tricky accepted forms (no engine needed), one line each
"$PY" "$SRC/tests/golden/zoo_refusals.py" >"$T/refusals.out" 2>&1
rc=$?
check "zoo_refusals.py: every refusal names path and op ($(tail -1 "$T/refusals.out"))" test $rc -eq 0
[ $rc -eq 0 ] || grep -A2 FAIL "$T/refusals.out"

# blocks as their reference implementations write them, exported with the parity check
"$PY" "$SRC/tests/golden/zoo_reference.py" >"$T/reference.out" 2>&1
rc=$?
check "zoo_reference.py: reference-code blocks export and match ($(tail -1 "$T/reference.out"))" test $rc -eq 0
[ $rc -eq 0 ] || grep FAIL "$T/reference.out"

# refusal 1: an unsupported module, named by its path; no file written
cat >"$T/bad.py" <<'EOF'
import torch.nn as nn
class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
    def forward(self, x):
        y = self.conv(x).transpose(1, 2)
        return self.attn(y, y, y)[0].mean(1)
class Bad(nn.Module):
    def __init__(self):
        super().__init__()
        self.front = nn.Conv1d(1, 8, 16, stride=16)
        self.block2 = Block()
        self.fc = nn.Linear(8, 5)
    def forward(self, x):
        return self.fc(self.block2(self.front(x)))
EOF
$EXPORT --module "$T/bad.py:Bad" --input-shape 1,400 --sample-rate 8000 --labels "$LABELS" \
  --out "$T/bad.safetensors" >"$T/bad.out" 2>&1
check_eq "unsupported module: exit 1" 1 $?
check "unsupported module: message names path and module" \
  grep -q "block2.attn: nn.MultiheadAttention is not supported" "$T/bad.out"
check "unsupported module: no traceback" bash -c "! grep -q Traceback '$T/bad.out'"
check "unsupported module: no file left" test ! -e "$T/bad.safetensors"

# refusal 2: an engine whose probabilities are off by 0.01 fails the parity check; file deleted
cat >"$T/offby.sh" <<EOF
#!/usr/bin/env bash
"$EXE" "\$@" || exit \$?
out=""; while [ \$# -gt 0 ]; do [ "\$1" = --out ] && out=\$2; shift; done
"$PY" -c "import sys; sys.path.insert(0, '$SRC/models/train'); import export
t, m = export.read_safetensors(sys.argv[1]); t = dict(t); t['probs'] = t['probs'] + 0.01
export.write_safetensors(sys.argv[1], t, m)" "\$out"
EOF
chmod +x "$T/offby.sh"
AUDIOCLASS_BIN=$T/offby.sh $EXPORT --module "$ZOO:TCN" --input-shape 1,400 --sample-rate 8000 \
  --labels "$LABELS" --out "$T/off.safetensors" >"$T/off.out" 2>&1
check_eq "parity failure: exit 1" 1 $?
check "parity failure: message says what was compared" \
  grep -q "differs from PyTorch (float64) on 4 random inputs of shape \[1, 400\]: max |probs diff| 0.01" "$T/off.out"
check "parity failure: file deleted" test ! -e "$T/off.safetensors"

# refusal 3: a graph tampered with after export (an input renamed to a missing value)
"$PY" - "$SRC" "$T/TCN.safetensors" "$T/tampered.safetensors" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1] + "/models/train")
import export
t, md = export.read_safetensors(sys.argv[2])
g = json.loads(md["graph"])
node = next(n for n in g["nodes"] if n["op"] == "add")
node["inputs"][1] = "no_such_value"
md = dict(md, graph=json.dumps(g))
export.write_safetensors(sys.argv[3], dict(t), md)
EOF
"$EXE" classify --model "$T/tampered.safetensors" "$T/clip.wav" >"$T/tampered.out" 2>&1
check "tampered graph: classify fails" test $? -ne 0
check "tampered graph: the engine names the missing input" grep -q "no_such_value" "$T/tampered.out"
"$EXE" serve --port 0 --bind 127.0.0.1 --model "t=$T/tampered.safetensors" >"$T/tampered.srv" 2>&1 &
spid=$!
PIDS+=("$spid")
for _ in $(seq 100); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
check "tampered graph: the server refuses to start" bash -c "! kill -0 $spid 2>/dev/null"
check "tampered graph: the server says why" grep -q "no_such_value" "$T/tampered.srv"

finish
