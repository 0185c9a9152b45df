#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# kv-once.sh: one key-value benchmark measurement with memcaslap as the
# load.  Runs as root inside the bench VM (see bench/kv/run-kv); also works
# on a host, where it only touches the namespaces it creates.
#
#   bench/kv/kv-once.sh --design NAME --server-cpus LIST --client-cpus LIST
#       [--ops N] [--conns N] [--value BYTES] [--topology veth|lo] [--mark]
#       [--port P] [--designs FILE] [--out DIR]
#
# The topology is bench-once.sh's (bench/guest/lib.sh).  The server (a
# design of bench/kv/designs.conf) runs pinned to the server CPUs, one
# thread per CPU; memcaslap runs on the client CPUs: one single-threaded
# memcaslap process pinned to each client CPU (a multi-threaded memcaslap
# binds its thread i to CPU i itself, which would put load on the server's
# CPUs), --conns persistent connections and --ops requests in all, split
# evenly (--ops must be a multiple of --conns, --conns of the client CPU
# count), its default mix (90% get, 10% set), fixed --value size, every get
# verified.  With --mark,
# the insncount window (bench/insncount/mp-mark) covers exactly the
# memcaslap run.  DIR/result.json gets the result; exit 0 when clean (no
# memcaslap error, miss or verification failure, all requests done, server
# healthy, no server errors), 1 otherwise, 2 on bad usage.
set -uo pipefail

here=$(dirname "$(realpath "$0")")
bench=$(dirname "$here")
root=$(dirname "$bench")

design= ops=10000 conns= value=64 topology=veth mark=0 port=11311 rfs=0
designs_file=$here/designs.conf out=${MP_OUT:-.} server_cpus= client_cpus=
usage() { sed -n '7,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--design) design=$2; shift ;;
	--ops) ops=$2; shift ;;
	--conns) conns=$2; shift ;;
	--value) value=$2; shift ;;
	--topology) topology=$2; shift ;;
	--mark) mark=1 ;;
	--port) port=$2; shift ;;
	--designs) designs_file=$2; shift ;;
	--out) out=$2; shift ;;
	--server-cpus) server_cpus=$2; shift ;;
	--client-cpus) client_cpus=$2; shift ;;
	-h|--help) usage ;;
	*) echo "kv-once: unknown argument '$1'" >&2; usage ;;
	esac
	shift
done
[ -n "$design" ] && [ -n "$server_cpus" ] && [ -n "$client_cpus" ] || usage
case $topology in veth|lo) ;; *) echo "kv-once: --topology veth|lo" >&2; exit 2 ;; esac
mkdir -p "$out" || exit 2
out=$(realpath "$out")
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

prog=kv-once
# shellcheck source=bench/guest/lib.sh
. "$bench/guest/lib.sh" || exit 2

list=$(cpulist_expand "$server_cpus") || usage
mapfile -t scpus <<<"$list"
list=$(cpulist_expand "$client_cpus") || usage
mapfile -t ccpus <<<"$list"
nsrv=${#scpus[@]} ncli=${#ccpus[@]}
[ -n "$conns" ] || conns=$((ncli * 8))
for v in ops conns value port; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "kv-once: --$v takes a positive number" >&2; exit 2; }
done
((conns % ncli == 0 && ops % conns == 0)) ||
	{ echo "kv-once: --conns must be a multiple of the client CPUs ($ncli), --ops of --conns" >&2; exit 2; }
line=$(awk -v d="$design" '{ sub(/#.*/, "") } $1 == d { print; exit }' "$designs_file")
[ -n "$line" ] || { echo "kv-once: design '$design' not in $designs_file" >&2; exit 2; }
read -r _ setup binary extra <<<"$line"
[ "$extra" = - ] && extra=
read -ra extra_args <<<"$extra"
[[ $binary == /* ]] || binary=$root/$binary
[ -x "$binary" ] || { echo "kv-once: $binary missing (make -C examples)" >&2; exit 2; }
[ "$setup" = none ] || { echo "kv-once: setup '$setup' not supported" >&2; exit 2; }
command -v memcaslap >/dev/null || { echo "kv-once: memcaslap missing (make deps: libmemcached-tools)" >&2; exit 2; }
marker=$bench/insncount/mp-mark
[ $mark = 0 ] || [ -x "$marker" ] || { echo "kv-once: $marker missing (make -C bench/insncount)" >&2; exit 2; }

tag=$$
if [ $topology = veth ]; then
	srv_ns=mpkvs$tag cli_ns=mpkvc$tag srv_dev=mpks$tag cli_dev=mpkc$tag srv_addr=10.77.0.1
else
	srv_ns=mpkvl$tag cli_ns=$srv_ns srv_addr=127.0.0.1
fi
server_pid=
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	teardown_topology
	restore_globals
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n 65536 2>/dev/null

srv_out=$out/server.out cli_out=$out/memcaslap.out
: >"$srv_out"; : >"$cli_out"
ready=false server_rc=-1 load_rc=-1 stats=null backend=null
declare -A m=()
if ! setup_topology; then
	fail "topology $topology setup failed"
else
	server_cmd=("$binary" --addr "$srv_addr" --port "$port" --threads "$nsrv"
		--cpus "$server_cpus" "${extra_args[@]}")
	log "server: ${server_cmd[*]}"
	ip netns exec "$srv_ns" taskset -c "$server_cpus" "${server_cmd[@]}" >"$srv_out" 2>&1 &
	server_pid=$!
	for ((i = 0; i < 600; i++)); do
		grep -q '^ready' "$srv_out" && { ready=true; break; }
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ $ready != true ]; then
		fail "server did not print 'ready' within 60s: $(tail -n 5 "$srv_out")"
	else
		load_cmd=(memcaslap -s "$srv_addr:$port" -T 1 -c $((conns / ncli))
			-x $((ops / ncli)) -X "$value" -v 1.0)
		log "client, on each of CPUs ${ccpus[*]}: ${load_cmd[*]}"
		pids=()
		[ $mark = 1 ] && "$marker" start
		for c in "${ccpus[@]}"; do
			nsx "$cli_ns" taskset -c "$c" "${load_cmd[@]}" >"$cli_out.$c" 2>&1 &
			pids+=($!)
		done
		load_rc=0
		for p in "${pids[@]}"; do wait "$p" || load_rc=$?; done
		[ $mark = 1 ] && "$marker" stop
		# "name: N" lines of each memcaslap's summary and "Ops: N" of its
		# last line, summed
		for c in "${ccpus[@]}"; do
			echo "== CPU $c" >>"$cli_out"
			cat "$cli_out.$c" >>"$cli_out"
			rm -f "$cli_out.$c"
		done
		while read -r k v; do m[$k]=$v; done < <(awk -F': *' \
			'/^(cmd_get|cmd_set|get_misses|verify_misses|verify_failed): *[0-9]+$/ { n[$1] += $2 }
			 /^Run time:/ { for (i = 1; i <= NF; i++) if ($i ~ /Ops$/) { split($(i + 1), a, " "); n["ops"] += a[1] }
				runs++ }
			 END { for (k in n) print k, n[k]; print "runs", runs + 0 }' "$cli_out")
		[ $load_rc = 0 ] || fail "memcaslap exited $load_rc: $(tail -n 3 "$cli_out")"
		[ "${m[runs]}" = "$ncli" ] || fail "${m[runs]} of $ncli memcaslap runs printed a summary"
		[ "${m[ops]:-}" = "$ops" ] || fail "memcaslap did ${m[ops]:-no} requests, not $ops"
		for k in get_misses verify_misses verify_failed; do
			[ "${m[$k]:-0}" = 0 ] || fail "memcaslap: $k ${m[$k]}"
		done
		[ -n "${m[cmd_get]:-}" ] || fail "memcaslap printed no summary"
	fi
	if kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid"
		for ((i = 0; i < 300; i++)); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$server_pid" 2>/dev/null && { fail "server did not exit on SIGTERM"; kill -KILL "$server_pid"; }
	else
		fail "server died during the run"
	fi
	wait "$server_pid"
	server_rc=$?
	server_pid=
	[ $server_rc = 0 ] || fail "server exited with status $server_rc: $(tail -n 3 "$srv_out")"
	if st=$(grep -m1 '^stats ' "$srv_out"); then
		read -r _ _ acc _ req _ err _ <<<"$st"
		stats="{\"accepted\": $acc, \"requests\": $req, \"errors\": $err}"
		[ "$err" = 0 ] || fail "server counted $err errors"
	elif [ $ready = true ]; then
		fail "server printed no stats line"
	fi
	b=$(sed -n 's/^kv-mp: backend //p' "$srv_out")
	[ -n "$b" ] && backend=$(json_str "$b")
fi

errs=0
for k in get_misses verify_misses verify_failed; do errs=$((errs + ${m[$k]:-0})); done
status=ok
[ ${#errors[@]} = 0 ] || status=error
{
	printf '{"design": %s, "topology": %s, "server_cpus": %s, "client_cpus": %s,\n' \
		"$(json_str "$design")" "$(json_str $topology)" "$(json_str "$server_cpus")" "$(json_str "$client_cpus")"
	printf ' "ops": %d, "conns": %d, "value": %d, "kernel": %s, "backend": %s,\n' \
		"$ops" "$conns" "$value" "$(json_str "$(uname -r)")" "$backend"
	printf ' "load_rc": %d, "load": {"ops": %s, "cmd_get": %s, "cmd_set": %s, "errors": %d},\n' \
		"$load_rc" "${m[ops]:-null}" "${m[cmd_get]:-null}" "${m[cmd_set]:-null}" "$errs"
	printf ' "server_ready": %s, "server_rc": %d, "server_stats": %s, "status": %s, "errors": [' \
		"$ready" "$server_rc" "$stats" "$(json_str $status)"
	sep=
	for e in "${errors[@]}"; do printf '%s%s' "$sep" "$(json_str "$e")"; sep=', '; done
	printf ']}\n'
} >"$out/result.json"
log "$status: $design ops ${m[ops]:-?} $(grep -m1 '^Run time' "$cli_out")"
[ $status = ok ]
