# SPDX-License-Identifier: Apache-2.0
"""Summarize one bench/run.sh run: print the table of medians, write JSON.

Usage: summarize.py META.tsv RESULTS.tsv OUT.json

META.tsv holds "key<TAB>value" lines about the run and the machine.
RESULTS.tsv holds one row per measurement, written by run.sh:
    group target round rps p50_us p75_us p90_us p99_us requests non2xx socket_errors
    cache_hit_ratio
(groups: verify, verify_cold, login, refresh, argon2; argon2 rows have no
latencies; cache_hit_ratio, from jwtd's /metrics, only on jwtd verify rows).

Only the standard library is used. Medians, not means: a single disturbed
run (another process waking up on a 2-core box) moves a mean, not a median.
"""
import datetime
import json
import statistics
import sys

GOAL_RATIO = 0.9  # /auth/verify >= 0.9x nginx `return 200`, same run


def load_meta(path):
    meta = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            meta[key] = value
    return meta


def load_results(path):
    runs = {}  # (group, target) -> list of dicts, in round order
    ordered = []  # every row, in the order run.sh measured them
    fields = ["rps", "p50_us", "p75_us", "p90_us", "p99_us", "requests", "non2xx",
              "socket_errors", "cache_hit_ratio"]
    with open(path, encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            group, target, rnd = cols[0], cols[1], int(cols[2])
            row = {"round": rnd}
            for name, value in zip(fields, cols[3:]):
                row[name] = float(value) if value != "" else None
            runs.setdefault((group, target), []).append(row)
            ordered.append((group, target, row))
    return runs, ordered


def med(rows, key):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def stats(rows):
    return {
        "rps_median": med(rows, "rps"),
        "p50_us_median": med(rows, "p50_us"),
        "p90_us_median": med(rows, "p90_us"),
        "p99_us_median": med(rows, "p99_us"),
        "cache_hit_ratio_median": med(rows, "cache_hit_ratio"),
        "rps_min": min(r["rps"] for r in rows),
        "rps_max": max(r["rps"] for r in rows),
        "runs": rows,
    }


def ratio(a, b):
    return a / b if a is not None and b else None


def goal_verdict(overall, paired):
    """True/False when both views of the ratio agree, None when they straddle
    the goal: on a noisy box one run cannot settle it either way."""
    views = [r for r in (overall, paired) if r is not None]
    if not views:
        return None
    if all(r >= GOAL_RATIO for r in views):
        return True
    if all(r < GOAL_RATIO for r in views):
        return False
    return None


def main():
    meta_path, results_path, out_path = sys.argv[1:4]
    meta = load_meta(meta_path)
    runs, ordered = load_results(results_path)

    # run.sh runs nginx immediately before every other verify target: the
    # ratio of each target run to that nginx run is a second, paired view.
    verify_rows = [(g, t, r) for g, t, r in ordered if g.startswith("verify")]
    paired = {}  # (group, target) -> list of ratios
    for (_, prev_t, prev), (cur_g, cur_t, cur) in zip(verify_rows, verify_rows[1:]):
        if prev_t == "nginx" and cur_t != "nginx":
            paired.setdefault((cur_g, cur_t), []).append(cur["rps"] / prev["rps"])

    nginx_rows = runs.get(("verify", "nginx"), [])
    nginx = stats(nginx_rows) if nginx_rows else None
    verify = {"nginx": nginx, "jwtd": {}, "jwtd_cold": {}}
    for (group, target), rows in runs.items():
        if group not in ("verify", "verify_cold") or not target.startswith("jwtd-"):
            continue
        alg = target[len("jwtd-"):]
        s = stats(rows)
        s["ratio_to_nginx"] = ratio(s["rps_median"], nginx["rps_median"])
        s["paired_ratio_median"] = (statistics.median(paired[(group, target)])
                                    if paired.get((group, target)) else None)
        s["goal_met"] = goal_verdict(s["ratio_to_nginx"], s["paired_ratio_median"])
        verify["jwtd" if group == "verify" else "jwtd_cold"][alg] = s
    for alg, cold in verify["jwtd_cold"].items():
        if alg in verify["jwtd"]:
            cold["ratio_to_hot"] = ratio(cold["rps_median"], verify["jwtd"][alg]["rps_median"])
    skipped = {k[len("skipped_"):]: v for k, v in meta.items() if k.startswith("skipped_")}
    verify["skipped"] = skipped

    argon2 = runs.get(("argon2", "argon2id"), [])
    login_jwtd = runs.get(("login", "jwtd"), [])
    login_nest = runs.get(("login", "nestjs"), [])
    refresh = runs.get(("refresh", "jwtd"), [])
    argon2_rate = med(argon2, "rps")
    login = {
        "jwtd": stats(login_jwtd) if login_jwtd else None,
        "argon2_raw": {"hashes_per_s_median": argon2_rate, "runs": argon2},
        "jwtd_to_argon2_ratio": ratio(med(login_jwtd, "rps"), argon2_rate),
    }
    peer = None
    nest_verify = runs.get(("verify", "nestjs"), [])
    if nest_verify:
        peer = {"verify": stats(nest_verify)}
        peer["verify"]["ratio_to_nginx"] = ratio(med(nest_verify, "rps"), nginx["rps_median"])
        peer["verify"]["paired_ratio_median"] = (
            statistics.median(paired[("verify", "nestjs")])
            if paired.get(("verify", "nestjs")) else None)
        for alg in ("HS256", "ES256", "EdDSA", "RS256"):
            if alg in verify["jwtd"]:
                peer[f"jwtd_{alg}_to_nest_verify"] = ratio(
                    verify["jwtd"][alg]["rps_median"], med(nest_verify, "rps"))
            if alg in verify["jwtd_cold"]:
                peer[f"jwtd_{alg}_cold_to_nest_verify"] = ratio(
                    verify["jwtd_cold"][alg]["rps_median"], med(nest_verify, "rps"))
        if login_nest:
            peer["login"] = stats(login_nest)
            peer["jwtd_to_nest_login"] = ratio(med(login_jwtd, "rps"), med(login_nest, "rps"))
    else:
        peer = {"skipped": meta.get("peer_skipped", "not run")}

    # Verify latency during a login flood (goal: p99 at most 2x idle).
    flood = None
    f_idle, f_load = runs.get(("flood", "idle"), []), runs.get(("flood", "during_login_flood"), [])
    if f_idle and f_load:
        p99_ratio = ratio(med(f_load, "p99_us"), med(f_idle, "p99_us"))
        flood_logins = runs.get(("flood", "logins_per_s"), [])
        # Each round's flood p99 against the idle p99 measured just before it.
        idle_by_round = {x["round"]: x["p99_us"] for x in f_idle}
        per_round = [ratio(x["p99_us"], idle_by_round.get(x["round"])) for x in f_load]
        per_round = [x for x in per_round if x is not None]
        flood = {"goal": "p99 of /auth/verify during a login flood <= 2x its idle p99",
                 "idle": stats(f_idle), "during_login_flood": stats(f_load),
                 "logins_per_s_median": med(flood_logins, "rps"),
                 "client_cpus": meta.get("flood_client_cpus") or "any",
                 "p99_ratio": p99_ratio,
                 "p99_ratio_per_round": per_round,
                 "rounds_within_2x": sum(1 for x in per_round if x <= 2.0),
                 "met": p99_ratio is not None and p99_ratio <= 2.0}

    # The hot path with a populated revoked set.
    revoked = None
    rv = runs.get(("verify_revoked", "jwtd-ES256"), [])
    if rv:
        revoked = stats(rv)
        revoked["revoked_sessions"] = int(meta.get("revoked_sessions") or 0)
        revoked["ratio_to_nginx"] = ratio(revoked["rps_median"], nginx["rps_median"])
        revoked["paired_ratio_median"] = (statistics.median(paired[("verify_revoked", "jwtd-ES256")])
                                          if paired.get(("verify_revoked", "jwtd-ES256")) else None)
        hot = verify["jwtd"].get("ES256")
        revoked["ratio_to_empty_set"] = ratio(revoked["rps_median"], hot["rps_median"] if hot else None)

    # PostgreSQL beside SQLite.
    pg = None
    pv, pl, pr = (runs.get(("verify_pg", "jwtd-ES256"), []), runs.get(("login_pg", "jwtd"), []),
                  runs.get(("refresh_pg", "jwtd"), []))
    if pv or pl or pr:
        pg = {"verify": stats(pv) if pv else None, "login": stats(pl) if pl else None,
              "refresh": stats(pr) if pr else None}
        if pv:
            pg["verify"]["ratio_to_nginx"] = ratio(med(pv, "rps"), nginx["rps_median"])
            pg["verify"]["paired_ratio_median"] = (
                statistics.median(paired[("verify_pg", "jwtd-ES256")])
                if paired.get(("verify_pg", "jwtd-ES256")) else None)
        pg["login_to_sqlite"] = ratio(med(pl, "rps"), med(login_jwtd, "rps"))
        pg["refresh_to_sqlite"] = ratio(med(pr, "rps"), med(refresh, "rps"))
    elif meta.get("pg_skipped"):
        pg = {"skipped": meta["pg_skipped"]}

    summary = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": meta.get("command"),
        "quick": meta.get("quick") == "1",
        "rounds": int(meta["rounds"]),
        "duration_s": int(meta["duration_s"]),
        "machine": {
            "nproc": int(meta["nproc"]),
            "cpu_model": meta.get("cpu_model"),
            "kernel": meta.get("kernel"),
            "loadavg_before": meta.get("load_before"),
            "loadavg_after": meta.get("load_after"),
        },
        "settings": {k: meta.get(k) for k in (
            "jwtd_version", "jwtd_commit", "jwtd_workers", "hash_workers", "argon2", "wrk", "login_connections",
            "refresh_connections", "cold_tokens", "access_ttl", "jwtd_sqlite_sync", "jwtd_hash_priority",
            "jwtd_hash_cpus",
            "nginx_version", "wrk_version", "node_version") if k in meta},
        "goal": {
            "statement": "/auth/verify >= 0.9x nginx return 200 throughput, same run",
            "min_ratio": GOAL_RATIO,
            "rule": "met (true) when both median(jwtd)/median(nginx) and the median of paired "
                    "ratios are >= min_ratio, not met (false) when both are below, "
                    "null (undecided) when they straddle it",
            "met": {alg: s["goal_met"] for alg, s in verify["jwtd"].items()},
            "met_cold": {alg: s["goal_met"] for alg, s in verify["jwtd_cold"].items()},
        },
        "verify": verify,
        "login": login,
        "refresh": {"jwtd": stats(refresh) if refresh else None},
        "nestjs_peer": peer,
        "verify_during_login_flood": flood,
        "verify_with_revocations": revoked,
        "postgres": pg,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")

    print_table(summary)


def fmt(v, spec):
    return format(v, spec) if v is not None else "-"


def print_table(s):
    v = s["verify"]
    print()
    print(f"jwtd benchmark — medians of {s['rounds']} rounds x {s['duration_s']} s "
          f"(wrk {s['settings'].get('wrk')}, {s['machine']['nproc']} CPUs, "
          f"load before {s['machine']['loadavg_before']})")
    print()
    print(f"{'GET, keep-alive':<30}{'req/s':>11}{'p50 us':>9}{'p99 us':>9}{'x nginx':>9}"
          f"{'paired':>8}{'hits':>6}  goal")
    n = v["nginx"]
    print(f"{'nginx return 200':<30}{fmt(n['rps_median'], '11.0f')}"
          f"{fmt(n['p50_us_median'], '9.0f')}{fmt(n['p99_us_median'], '9.0f')}{'1.00':>9}")
    for label, group in (("", "jwtd"), (" cold", "jwtd_cold")):
        for alg, a in v[group].items():
            goal = {True: "met", False: "NOT met", None: "undecided"}[a["goal_met"]]
            hits = a["cache_hit_ratio_median"]
            print(f"{'jwtd /auth/verify ' + alg + label:<30}{fmt(a['rps_median'], '11.0f')}"
                  f"{fmt(a['p50_us_median'], '9.0f')}{fmt(a['p99_us_median'], '9.0f')}"
                  f"{fmt(a['ratio_to_nginx'], '9.2f')}{fmt(a['paired_ratio_median'], '8.2f')}"
                  f"{fmt(hits * 100 if hits is not None else None, '5.0f')}%  {goal} (>= 0.9)")
    for alg, why in v["skipped"].items():
        print(f"{'jwtd /auth/verify ' + alg:<30}  skipped: {why}")
    p = s["nestjs_peer"]
    if "verify" in p:
        nv = p["verify"]
        print(f"{'NestJS GET /protected':<30}{fmt(nv['rps_median'], '11.0f')}"
              f"{fmt(nv['p50_us_median'], '9.0f')}{fmt(nv['p99_us_median'], '9.0f')}"
              f"{fmt(nv['ratio_to_nginx'], '9.3f')}{fmt(nv['paired_ratio_median'], '8.3f')}")
        for alg in ("HS256", "ES256", "EdDSA", "RS256"):
            hot, cold = p.get(f"jwtd_{alg}_to_nest_verify"), p.get(f"jwtd_{alg}_cold_to_nest_verify")
            if hot is not None:
                print(f"  jwtd {alg} / NestJS verify: {hot:.1f}x (cold path: {fmt(cold, '.1f')}x)")
    else:
        print(f"NestJS peer: skipped ({p['skipped']})")
    print()
    lg = s["login"]
    print(f"{'POST':<30}{'req/s':>11}{'p50 us':>9}{'p99 us':>9}")
    if lg["jwtd"]:
        j = lg["jwtd"]
        print(f"{'jwtd /auth/login':<30}{fmt(j['rps_median'], '11.1f')}"
              f"{fmt(j['p50_us_median'], '9.0f')}{fmt(j['p99_us_median'], '9.0f')}")
    print(f"{'raw argon2id (' + s['settings'].get('hash_workers', '?') + ' thr)':<30}"
          f"{fmt(lg['argon2_raw']['hashes_per_s_median'], '11.1f')}   hashes/s")
    print(f"  jwtd login / raw argon2id: {fmt(lg['jwtd_to_argon2_ratio'], '.2f')}")
    if "login" in p:
        nl = p["login"]
        print(f"{'NestJS /auth/login':<30}{fmt(nl['rps_median'], '11.1f')}"
              f"{fmt(nl['p50_us_median'], '9.0f')}{fmt(nl['p99_us_median'], '9.0f')}"
              f"   (bcrypt cost 10, not argon2id)")
        print(f"  jwtd login / NestJS login: {fmt(p['jwtd_to_nest_login'], '.2f')}")
    r = s["refresh"]["jwtd"]
    if r:
        print(f"{'jwtd /auth/refresh':<30}{fmt(r['rps_median'], '11.1f')}"
              f"{fmt(r['p50_us_median'], '9.0f')}{fmt(r['p99_us_median'], '9.0f')}"
              f"   ({s['settings'].get('refresh_connections')} chains)")
    fl = s.get("verify_during_login_flood")
    if fl:
        print()
        print(f"{'/auth/verify, -t1 -c2':<30}{'req/s':>11}{'p50 us':>9}{'p99 us':>9}")
        for key, label in (("idle", "idle"), ("during_login_flood", "during a login flood")):
            x = fl[key]
            print(f"{'  ' + label:<30}{fmt(x['rps_median'], '11.0f')}"
                  f"{fmt(x['p50_us_median'], '9.0f')}{fmt(x['p99_us_median'], '9.0f')}")
        print(f"  p99 flood / p99 idle: {fmt(fl['p99_ratio'], '.2f')} "
              f"({'met' if fl['met'] else 'NOT met'}: <= 2); logins during the flood: "
              f"{fmt(fl['logins_per_s_median'], '.1f')}/s")
        print(f"  per round: {', '.join(format(x, '.2f') for x in fl['p99_ratio_per_round'])} "
              f"({fl['rounds_within_2x']} of {len(fl['p99_ratio_per_round'])} within 2x); "
              f"verify client on CPUs: {fl['client_cpus']}")
    rv = s.get("verify_with_revocations")
    if rv:
        print(f"{'verify ES256, ' + str(rv['revoked_sessions']) + ' revoked':<30}"
              f"{fmt(rv['rps_median'], '11.0f')}{fmt(rv['p50_us_median'], '9.0f')}"
              f"{fmt(rv['p99_us_median'], '9.0f')}{fmt(rv['ratio_to_nginx'], '9.2f')}"
              f"{fmt(rv['paired_ratio_median'], '8.2f')}   vs empty set: "
              f"{fmt(rv['ratio_to_empty_set'], '.2f')}")
    pg = s.get("postgres")
    if pg and "skipped" not in pg:
        print()
        print("PostgreSQL (same machine, loopback):")
        for key, label in (("verify", "/auth/verify ES256"), ("login", "/auth/login"),
                           ("refresh", "/auth/refresh")):
            x = pg.get(key)
            if x:
                extra = (f"{fmt(x.get('ratio_to_nginx'), '9.2f')}{fmt(x.get('paired_ratio_median'), '8.2f')}"
                         if key == "verify" else "")
                print(f"{'  ' + label:<30}{fmt(x['rps_median'], '11.1f')}"
                      f"{fmt(x['p50_us_median'], '9.0f')}{fmt(x['p99_us_median'], '9.0f')}{extra}")
        print(f"  login PG/SQLite {fmt(pg['login_to_sqlite'], '.2f')}, "
              f"refresh PG/SQLite {fmt(pg['refresh_to_sqlite'], '.2f')}")
    elif pg:
        print(f"PostgreSQL: skipped ({pg['skipped']})")
    print()


if __name__ == "__main__":
    main()
