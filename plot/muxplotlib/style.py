"""How things look on every chart: one colour and marker per model, units, and the
environment line that titles and footers carry."""
from __future__ import annotations

# Fixed so a model is recognisable from chart to chart and run to run. Markers avoid "x",
# which marks a refused or failed point.
MODEL_STYLE = {
    "blocking": ("#7f7f7f", "s"),
    "nonblocking": ("#8c564b", "v"),
    "select": ("#d62728", "D"),
    "poll": ("#ff7f0e", "^"),
    "epoll-lt": ("#1f77b4", "o"),
    "epoll-et": ("#2ca02c", "p"),
    "fork": ("#9467bd", "h"),
    "threads": ("#bcbd22", "<"),
    "epoll-oneshot": ("#17becf", ">"),
    "reuseport": ("#000000", "d"),
    "io-uring": ("#e377c2", "*"),
}
MODEL_ORDER = list(MODEL_STYLE)
_SPARE = [("#aec7e8", "8"), ("#98df8a", "P"), ("#ff9896", "H"), ("#c5b0d5", "2")]


def order_models(models) -> list:
    known = [m for m in MODEL_ORDER if m in models]
    return known + sorted(m for m in models if m not in MODEL_STYLE)


def model_style(model: str) -> tuple:
    """(colour, marker); a model not in the fixed table gets a spare chosen by its name,
    so it too keeps one look across charts."""
    if model in MODEL_STYLE:
        return MODEL_STYLE[model]
    return _SPARE[sum(map(ord, model)) % len(_SPARE)]


X_LABELS = {
    "conns": "connections",
    "idle_conns": "idle connections",
    "rate_per_s": "offered rate (requests/s)",
}


def fmt_num(v: float, digits: int = 3) -> str:
    """A figure to `digits` significant digits with thin grouping: 52 300, 1.84, 0.0123."""
    if v is None:
        return "–"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 10 ** (digits - 1):
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.{digits}g}" if a >= 1e-3 else f"{v:.2e}"


def fmt_x(x: float) -> str:
    """Axis and sentence form of an x value: 100, 2 000, 10k."""
    if x >= 1000 and x % 1000 == 0:
        return f"{int(x // 1000)}k"
    return fmt_num(x) if x != int(x) else f"{int(x):,}".replace(",", " ")


def fmt_ratio(r: float) -> str:
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def _first(d: dict, *keys, default=None):
    for k in keys:
        if d.get(k) not in (None, "", [], {}):
            return d[k]
    return default


def _cpu_list(v) -> str:
    if isinstance(v, list):
        return ",".join(str(c) for c in v) if v else "any"
    return str(v) if v not in (None, "") else "unpinned"


def environment_facts(env: dict, plan: dict, started_at: str = "") -> dict:
    """The environment as label -> text, tolerant of the two shapes a sweep writes: the flat
    keys of results/README.md and the nested ones of common/environment.cpp."""
    kernel = env.get("kernel")
    if isinstance(kernel, dict):
        kernel = " ".join(str(kernel[k]) for k in ("sysname", "release", "machine") if kernel.get(k))
    cores = _first(env, "cores_online", "online_cores")
    fd = env.get("fd_limit") if isinstance(env.get("fd_limit"), dict) else {}
    fd_soft = _first(env, "fd_limit_soft", default=fd.get("soft"))
    fd_hard = _first(env, "fd_limit_hard", default=fd.get("hard"))
    facts = {
        "kernel": kernel or "unknown",
        "CPU": str(env.get("cpu_model") or "unknown"),
        "cores online": str(cores) if cores is not None else "unknown",
        "pinning": f"server cpus {_cpu_list(plan.get('server_cpus'))}, client cpus {_cpu_list(plan.get('client_cpus'))}",
        "date": str(_first(env, "date", "date_utc", default=started_at or "unknown")),
        "fd limit": f"soft {fd_soft}, hard {fd_hard}" if fd_hard is not None else "unknown",
        "driver affinity": _cpu_list(_first(env, "affinity", "cpu_affinity")),
        "compiler": str(env.get("compiler") or "unknown"),
        "build type": str(env.get("build_type") or "unknown"),
        "git commit": str(env.get("git_commit") or "unknown"),
        "hostname": str(env.get("hostname") or "unknown"),
    }
    return facts


def environment_line(facts: dict) -> str:
    """The short line under every chart title."""
    return (f"{facts['kernel']} · {facts['cores online']} CPUs ({facts['CPU']}) · "
            f"{facts['pinning']} · {facts['date']}")


def plan_line(plan: dict, run_name: str) -> str:
    """The footer: what load made these numbers."""
    parts = [f"run {run_name}", f"plan {plan.get('name', '?')}", f"proto {plan.get('proto', '?')}"]
    if "payload_bytes" in plan:
        parts.append(f"{plan['payload_bytes']} B requests / {plan.get('reply_bytes', '?')} B replies")
    if "duration_s" in plan:
        parts.append(f"{plan['duration_s']} s windows after {plan.get('warmup_s', '?')} s warmup")
    if "repeats" in plan:
        parts.append(f"{plan['repeats']} repeats")
    if plan.get("workers"):
        parts.append(f"pool models with {plan['workers']} workers")
    return " · ".join(parts)


def scenario_about(scenario: str, plan: dict) -> str:
    """What load a scenario applies, in the plan's own numbers."""
    def p(key, default):
        v = plan.get(key, default)
        return fmt_num(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v

    about = {
        "active": "every connection loaded, closed loop",
        "idle": f"{p('idle_active', '?')} loaded connections plus idle ones",
        "latency": f"open loop at {p('latency_rate_per_s', '?')} requests/s over {p('latency_conns', '?')} connections",
        "churn": f"a new connection per request, {p('churn_conns', '?')} at once",
        "slow": (f"work mix {p('slow_mix', '?')}, open loop at {p('slow_rate_per_s', '?')} requests/s "
                 f"over {p('slow_conns', '?')} connections" if "slow_rate_per_s" in plan
                 else f"work mix {p('slow_mix', '?')} over {p('slow_conns', '?')} connections, closed loop"),
    }
    if scenario.startswith("rate-idle-") and scenario[len("rate-idle-"):].isdigit():
        idle = fmt_num(int(scenario[len("rate-idle-"):]))
        return (f"{idle} idle connections beside {p('rate_active', '?')} loaded ones, offered each rate "
                "open loop")
    return about.get(scenario, scenario)
