#!/usr/bin/env bash
# dsocr on a real Slurm: munge, slurmctld and slurmd on localhost (Debian's slurm-wlm), started here and
# stopped after; an array of 4 shards over 20 images with the tiny model; one array task cancelled
# mid-way and resubmitted; afterwards every input has exactly one complete output and `dsocr status` is
# clean. Skipped (exit 77) where Slurm is not installed or cannot start (it needs root).
set -euo pipefail
BIN=$1 MODEL=$2 DATA=$3
skip() { echo "SKIP: $*"; exit 77; }
command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
  skip "Slurm is not installed (apt-get install slurm-wlm munge)"
[ "$(id -u)" = 0 ] || skip "starting slurmctld/slurmd for the test needs root"

tmp=$(mktemp -d); chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# munge with a key of its own in the test folder.
mkdir -p "$tmp/munge/etc" "$tmp/munge/run" "$tmp/munge/log" "$tmp/munge/lib"
dd if=/dev/urandom of="$tmp/munge/etc/munge.key" bs=1024 count=1 status=none
chmod 700 "$tmp/munge/etc" "$tmp/munge/lib" "$tmp/munge/log"; chmod 755 "$tmp/munge" "$tmp/munge/run"; chmod 600 "$tmp/munge/etc/munge.key"
munge_socket=$tmp/munge/run/munge.socket.2
munged --foreground --force --key-file="$tmp/munge/etc/munge.key" --socket="$munge_socket" \
  --pid-file="$tmp/munge/run/munged.pid" --log-file="$tmp/munge/log/munged.log" --seed-file="$tmp/munge/lib/seed" \
  >"$tmp/munge/log/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 50); do [ -S "$munge_socket" ] && break; sleep 0.1; done
[ -S "$munge_socket" ] || skip "munged did not start"

host=$(hostname -s)
cpus=$(nproc)
mkdir -p "$tmp/spool/ctld" "$tmp/spool/d" "$tmp/log"
cat > "$tmp/slurm.conf" <<EOF
ClusterName=dsocrtest
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$munge_socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$tmp/spool/ctld
SlurmdSpoolDir=$tmp/spool/d
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -D -f "$SLURM_CONF" >"$tmp/log/ctld.out" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" >"$tmp/log/d.out" 2>&1 &
slurmd_pid=$!
pids+=($slurmd_pid)
node_up() { timeout 5 sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; }
for _ in $(seq 100); do
  node_up && break
  kill -0 "$slurmd_pid" 2>/dev/null ||  # e.g. no cgroup file system mounted: Slurm 22.05's slurmd needs one
    skip "slurmd exited: $(tail -n 2 "$tmp/log/d.out" 2>/dev/null | tr '\n' ' ')"
  sleep 0.2
done
node_up || skip "slurmctld/slurmd did not come up: $(tail -n 3 "$tmp/log/slurmctld.log" 2>/dev/null | tr '\n' ' ')"

mkdir -p "$tmp/in"
for i in $(seq -w 1 20); do cp "$DATA/images/small.png" "$tmp/in/page$i.png"; done
out=$tmp/out
cat > "$tmp/job.sh" <<EOF
#!/usr/bin/env bash
#SBATCH --cpus-per-task=1
exec "$BIN" ocr --model "$MODEL" --mode tiny --max-tokens 64 --no-ngram -t 1 -q --resume \
  --shard auto/4 --out "$out" "$tmp/in"
EOF
chmod +x "$tmp/job.sh"

wait_for_job() {  # wait_for_job ID: until no task of the job is pending or running
  for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  echo "job $1 did not finish"; squeue; exit 1
}

job=$(sbatch --parsable --array=0-3 -o "$tmp/log/task-%a.out" "$tmp/job.sh")
# Cancel array task 2 once it is running (or at once, if it is already done).
for _ in $(seq 200); do
  state=$(squeue -h -j "${job}_2" -o '%T' 2>/dev/null || true)
  [ "$state" = RUNNING ] && break
  [ -z "$state" ] && break
  sleep 0.1
done
sleep 0.5
scancel "${job}_2" || true
wait_for_job "$job"

# With task 2 cancelled its share is unfinished; status says so and exits non-zero.
if "$BIN" status -q "$out" >"$tmp/status1.txt"; then
  grep -q "20 done" "$tmp/status1.txt" || { echo "status clean although a shard was cancelled"; cat "$tmp/status1.txt"; exit 1; }
fi

# Resubmit the cancelled task: it resumes its shard, nothing finished by another shard is redone.
before=$(find "$out" -name '*.png.json' -newer "$tmp/job.sh" | sort | xargs -r stat -c '%n %Y' | sort)
job2=$(sbatch --parsable --array=2 -o "$tmp/log/retry-%a.out" "$tmp/job.sh")
wait_for_job "$job2"

"$BIN" status "$out" >"$tmp/status2.txt" || { echo "status not clean after the resubmit:"; cat "$tmp/status2.txt"; exit 1; }
grep -q "20 document(s): 20 done, 0 failed, 0 in progress, 0 missing" "$tmp/status2.txt" ||
  { echo "unexpected status:"; cat "$tmp/status2.txt"; exit 1; }
n=$(find "$out" -maxdepth 1 -name '*.png.json' | wc -l)
[ "$n" = 20 ] || { echo "expected 20 outputs, found $n"; exit 1; }
for f in "$out"/*.png.json; do grep -q '"complete": true' "$f" || { echo "$f not complete"; exit 1; }; done
# The other shards' outputs were not rewritten by the resubmitted task.
while read -r name mtime; do
  [ -z "$name" ] && continue
  now=$(stat -c '%Y' "$name")
  [ "$now" = "$mtime" ] || { echo "$name was redone by the resubmitted shard"; exit 1; }
done <<<"$before"
echo "slurm: ok (4 shards, task 2 cancelled and resubmitted)"
