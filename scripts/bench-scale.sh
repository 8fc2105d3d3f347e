# The scale scenarios of scripts/bench.sh (issue 21: rooms larger than one object, and a Spring
# app's chat rooms each in an object of its own); sourced by bench.sh, which defines `step`,
# `loadgen`, `record`, `wait_http`, `PIDS_TO_STOP`, `WORK` and `RESULTS`, and runs
# `scale_scenarios` (alone with `bash scripts/bench.sh scale`).
#
# Two stomp-rooms servers of their own, both on CPU 0, each with LOAD_TEST_SETTINGS and the
# Spring tutorial's destinations (`/sub/` acts as `/topic/`; a SEND to `/pub/chat/message` goes
# to `/sub/chat/room/{roomId}` of its JSON body), and:
#   direct:  `scaling.members_per_object: 0`: every socket of a room on the room's own object;
#   sharded: the default `scaling` (a room holds 1,000 sockets itself, then gateway objects of
#            1,000 each take the rest) and `room_destinations: ["/sub/chat/room/{room}"]`.
# Settings (environment): SCALE_MEMBERS ("1000 5000 10000"), SCALE_PARALLEL (connections
# opening at once, 200), SCALE_PACED_DELIVERIES (deliveries/s the paced phase aims at, 10000:
# 10 messages/s into 1,000 members, 1/s into 10,000), SCALE_PACED_SECONDS (10),
# SCALE_UNPACED_DELIVERIES (200000: the unpaced phase's messages are this over the members),
# SCALE_PLACEMENTS ("direct sharded": the servers the big room runs on; empty: none),
# SCALE_SEED_APP (1; 0 leaves the Spring app out), SCALE_FILES_PER_MEMBER (4.5, below).
#
# How many members fit: under `wrangler dev` one workerd process holds about 4.3 open files
# per WebSocket (6.4 over its two processes: 12,866 files for 2,001 sockets when measured), and
# every object of a server (room and gateways alike) is in that process, so its open-file limit
# (`ulimit -n`, raised as far as allowed at the start) caps the members of one run at about
# limit / 4.5. A size past it is recorded as not run, with the reason, and the largest size
# that fits runs in its place.

SCALE_DIRECT_PORT=8816 SCALE_SHARDED_PORT=8817
SPRING_DESTINATIONS='{"topics": ["/sub/"], "application": {"/pub/chat/message": "/sub/chat/room/{roomId}"}}'

# LOAD_TEST_SETTINGS with the Spring destinations and the given `scaling`.
scale_settings() {
    python3 -c 'import json,sys; s=json.loads(sys.argv[1]); s["destinations"]=json.loads(sys.argv[2]); s["scaling"]=json.loads(sys.argv[3]); print(json.dumps(s))' \
        "$LOAD_TEST_SETTINGS" "$SPRING_DESTINATIONS" "$1"
}

# One loadgen run: its JSON, tagged, to the results; a run that fails is recorded as failed
# (with the end of its log), and the others go on.
scale_run() { # name, tags (JSON), loadgen arguments...
    local name="$1" tags="$2"; shift 2
    if loadgen "$@" > "$WORK/$name.json" 2> >(tee "$WORK/$name.log" >&2); then
        record "$tags" "$SCALE_TAGS" < "$WORK/$name.json"
    else
        step "$name failed (above; $WORK/$name.log)"
        python3 -c 'import json,sys; print(json.dumps({"scenario": sys.argv[2], "failed": open(sys.argv[1]).read()[-2000:]}))' \
            "$WORK/$name.log" "$1" | record "$tags" "$SCALE_TAGS"
    fi
}

scale_scenarios() {
    local members_list parallel paced_deliveries paced_seconds unpaced_deliveries limit
    read -r -a members_list <<< "${SCALE_MEMBERS:-1000 5000 10000}"
    parallel="${SCALE_PARALLEL:-200}"
    paced_deliveries="${SCALE_PACED_DELIVERIES:-10000}"
    paced_seconds="${SCALE_PACED_SECONDS:-10}"
    unpaced_deliveries="${SCALE_UNPACED_DELIVERIES:-200000}"
    limit="$(ulimit -n)"
    local -A port=([direct]=$SCALE_DIRECT_PORT [sharded]=$SCALE_SHARDED_PORT) group settings
    settings[direct]="$(scale_settings '{"members_per_object": 0}')"
    settings[sharded]="$(scale_settings '{"room_destinations": ["/sub/chat/room/{room}"]}')"
    local commit
    commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    [ -z "$(git status --porcelain -- src Cargo.toml Cargo.lock wrangler.toml 2>/dev/null)" ] || commit="$commit with uncommitted changes"
    SCALE_TAGS="$(python3 -c 'import datetime,json,sys; print(json.dumps({"measured_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": sys.argv[1], "open_file_limit": int(sys.argv[2])}))' "$commit" "$limit")"

    local placement
    for placement in direct sharded; do
        step "starting stomp-rooms '$placement' for the scale scenarios (port ${port[$placement]}) on CPU 0"
        rm -rf "$WORK/state-scale-$placement"
        setsid taskset -c 0 env STOMP_ROOMS_SKIP_BUILD=1 wrangler dev -c "$(measurement_config)" --port "${port[$placement]}" \
            --inspector-port "$(( ${port[$placement]} + 600 ))" --var "ROOM_SETTINGS:${settings[$placement]}" \
            --persist-to "$WORK/state-scale-$placement" >"$WORK/scale-$placement.log" 2>&1 &
        group[$placement]=$!; PIDS_TO_STOP+=("${group[$placement]}")
    done
    for placement in direct sharded; do wait_http "http://127.0.0.1:${port[$placement]}/" 90; done
    scale_pids() { group_pids "${group[direct]}"; group_pids "${group[sharded]}"; }
    scale_quiet() { wait_until_idle "scale_pids_joined"; }
    scale_pids_joined() { scale_pids | paste -sd, -; }

    # The sizes that fit under the open-file limit, and in place of those that do not, the
    # largest that does (rounded down to hundreds).
    local fits skipped=() sizes=() size
    fits="$(python3 -c 'import sys; print(max(0, int((int(sys.argv[1]) - 500) / float(sys.argv[2])) // 100 * 100))' \
        "$limit" "${SCALE_FILES_PER_MEMBER:-4.5}")"
    for size in "${members_list[@]}"; do
        if [ "$size" -le "$fits" ]; then sizes+=("$size"); else skipped+=("$size"); fi
    done
    if [ "${#skipped[@]}" -gt 0 ] && [ "$fits" -gt 0 ] && ! printf '%s\n' "${sizes[@]}" | grep -qx "$fits"; then
        sizes+=("$fits")
    fi
    [ "${#skipped[@]}" -gt 0 ] && step "scale: ${skipped[*]} members need more open files than the limit ($limit) gives one server process; the largest that fits: $fits"

    local members room url tags placements
    read -r -a placements <<< "${SCALE_PLACEMENTS-direct sharded}"
    for placement in "${placements[@]}"; do
        case "$placement" in direct|sharded) ;; *) echo "bench: SCALE_PLACEMENTS takes direct and sharded, not '$placement'" >&2; return 1 ;; esac
    done
    for placement in "${placements[@]}"; do
        for members in "${skipped[@]}"; do
            tags="{\"placement\": \"$placement\", \"members\": $members, \"room_settings\": ${settings[$placement]}}"
            echo "{\"scenario\": \"scale\", \"skipped\": \"needs about ${SCALE_FILES_PER_MEMBER:-4.5} open files per member in one workerd process; its limit is $limit, which holds about $fits\"}" \
                | record "$tags" "$SCALE_TAGS"
        done
        for members in "${sizes[@]}"; do
            tags="{\"placement\": \"$placement\", \"members\": $members, \"room_settings\": ${settings[$placement]}}"
            room="scale-$members-$RANDOM"
            url="ws://127.0.0.1:${port[$placement]}/rooms/$room"
            scale_quiet
            step "scale, $placement: 1 publisher -> $members members of one room, unpaced then paced"
            scale_run "scale-$placement-$members" "$tags" scale --flavor stomp --url "$url" --destination /topic/chat \
                --members "$members" --parallel "$parallel" \
                --messages "$(( unpaced_deliveries / members > 5 ? unpaced_deliveries / members : 5 ))" \
                --paced-rate "$(( paced_deliveries / members > 1 ? paced_deliveries / members : 1 ))" \
                --paced-seconds "$paced_seconds" --timeout 180 \
                --stats "http://127.0.0.1:${port[$placement]}/rooms/$room/stats" \
                --pids "$(group_pids "${group[$placement]}")"
        done
    done

    local variant
    [ "${SCALE_SEED_APP:-1}" = 1 ] && for variant in before after; do
        placement=direct; [ "$variant" = after ] && placement=sharded
        scale_quiet
        step "seed app, $variant ($placement server): 100 chat rooms x 10 members on /ws-stomp, 2 msg/s each, 10 s"
        scale_run "seed-app-$variant" "{\"scenario\": \"seed-app\", \"variant\": \"$variant\", \"placement\": \"$placement\", \"room_settings\": ${settings[$placement]}}" \
            rooms --flavor stomp --url "ws://127.0.0.1:${port[$placement]}/ws-stomp" \
            --destination "/sub/chat/room/{room}" --send-to /pub/chat/message --body json \
            --rooms 100 --members 10 --rate 2 --seconds 10 \
            --stats "http://127.0.0.1:${port[$placement]}/rooms/ws-stomp/stats,http://127.0.0.1:${port[$placement]}/rooms/bench-0/stats" \
            --room-stats "http://127.0.0.1:${port[$placement]}/rooms/{room}/stats" \
            --pids "$(group_pids "${group[$placement]}")"
    done

    for placement in direct sharded; do
        kill -TERM -- "-${group[$placement]}" 2>/dev/null || kill -TERM "${group[$placement]}" 2>/dev/null || true
    done
}
