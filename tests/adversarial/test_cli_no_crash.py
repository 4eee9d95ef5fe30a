"""Every hostile input, through the command that reads it: a clean message, never exit 3 ("unexpected error").

Inputs that could exhaust memory if a check regressed (lying row counts, a zip bomb) run in a child process
with a capped address space; the others run in this process through ``cimstats.cli.main.main``.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from hostile import (MEMORY_CAP, ROOT, bomb_qdpx, deep_codes_project, deflated, dictionary, lying_survey, qde,
                     qdpx, raw_zip, text_project)


def _dict_check(rule, source, args, typ="decimal"):
    return lambda d: ["dictionary", "check", str(dictionary(d / "dict", target_type=typ, rule=rule, source=source,
                                                            arguments=args))]


def _harmonise(rule, source, args, typ="decimal"):
    return lambda d: ["harmonise", "--dictionary", str(dictionary(d / "dict", target_type=typ, rule=rule,
                                                                  source=source, arguments=args)),
                      "--out", str(d / "out.parquet"), "--quiet"]


def _qdpx(project=None, members=None):
    def build(d):
        p = d / "p.qdpx"
        if members is not None:
            raw_zip(p, members)
        else:
            qdpx(p, project)
        return ["qdpx", str(p)]
    return build


def _plan(text: bytes | str):
    def build(d):
        p = d / "plan.yaml"
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return ["run", str(p), "--out", str(d / "out"), "--dry-run", "--quiet"]
    return build


def _sidecar(d):
    (d / "w.csv").write_text("x\n1\n", encoding="utf-8")
    (d / "w.csv.meta.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    return ["inspect", str(d / "w.csv")]


def _qde_member(**kw):
    m = deflated(qde().encode())
    m.update(name="project.qde", **kw)
    return m


DEMO_PLAN = "sources: {demo: true, dictionary: demo}\n"

IN_PROCESS = {
    "inspect /dev/zero": lambda d: ["inspect", "/dev/zero"],
    "inspect a folder": lambda d: ["inspect", str(d)],
    "inspect a deep sidecar": _sidecar,
    "check quantile n=1e9": _dict_check("quantile", "v", "n=1000000000; direction=higher_more_deprived", "integer"),
    "check id width=1e8": _dict_check("id", "v", "width=100000000", "string"),
    "check case_when parentheses": _dict_check("case_when", "v", "when " + "(" * 2000 + "v == 1" + ")" * 2000
                                               + " then 1"),
    "check case_when nots": _dict_check("case_when", "v", "when " + "not " * 5000 + "v == 1 then 1"),
    "check constant class": _dict_check("constant", "", "value={0.__class__}"),
    "harmonise constant class": _harmonise("constant", "", "value={0.__class__}"),
    "harmonise case_when nots": _harmonise("case_when", "v", "when " + "not " * 5000 + "v == 1 then 1"),
    "harmonise quantile n=1e9": _harmonise("quantile", "v", "n=1e9; direction=higher_more_deprived", "integer"),
    "qdpx start abc": _qdpx(text_project("abc")),
    "qdpx start 1.5": _qdpx(text_project("1.5")),
    "qdpx start missing": _qdpx(text_project(None)),
    "qdpx start huge": _qdpx(text_project("9" * 5000)),
    "qdpx code without guid": _qdpx(qde("<CodeBook><Codes><Code/></Codes></CodeBook>")),
    "qdpx codes 1500 deep": _qdpx(deep_codes_project(1500)),
    "qdpx corrupt deflate": _qdpx(members=[_qde_member(data=b"\xff" * 64)]),
    "qdpx unsupported method": _qdpx(members=[_qde_member(method=98)]),
    "qdpx encrypted": _qdpx(members=[_qde_member(flags=1)]),
    "qdpx a folder": lambda d: ["qdpx", str(d)],
    "run binary plan": _plan(b"\x89PNG\r\n\x1a\n\xff\xfe\x00" * 20),
    "run outputs tables 5": _plan(DEMO_PLAN + "outputs: {tables: 5}\n"),
    "run n_boot 10^12": _plan(DEMO_PLAN + "mechanisms: {n_boot: 1000000000000}\n"),
    "run deep yaml": _plan("plan: x\nsources: " + "[" * 1100 + "]" * 1100 + "\n"),
    "run plan is a folder": lambda d: ["run", str(d), "--out", str(d / "out"), "--dry-run"],
}


#: hostile-looking inputs that are valid and must simply be read
READ_FINE = {"qdpx codes 1500 deep"}


def _check_output(code: int, err: str, args: list[str]) -> None:
    assert code != 3, err
    assert "Traceback" not in err and "unexpected error" not in err, err
    assert code in (1, 2), (code, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "no message"
    if code == 2:  # one sentence naming the problem
        assert lines[0].startswith("cimstats: error: ") and lines[0].rstrip().endswith("."), lines[0]
    else:  # a checked report: one line per problem, each with its stable code
        assert any(ln.lstrip().startswith("[") for ln in lines[1:]), err


@pytest.mark.parametrize("case", list(IN_PROCESS))
def test_hostile_input_gives_a_clean_message(case, tmp_path, capsys):
    from cimstats.cli.main import main

    if "/dev/zero" in case and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    args = IN_PROCESS[case](tmp_path)
    code = main(args)
    out, err = capsys.readouterr()
    if case in READ_FINE:  # deep but valid: read in full
        assert code == 0 and "1500 codes" in out, (code, err)
        return
    _check_output(code, err, args)


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


RISKY = {
    "inspect sav 10^9 rows": lambda d: ["inspect", str(lying_survey(d, "sav", 10**9))],
    "inspect zsav 10^9 rows": lambda d: ["inspect", str(lying_survey(d, "zsav", 10**9))],
    "inspect dta 2^31-1 rows": lambda d: ["inspect", str(lying_survey(d, "dta", 2**31 - 1))],
    "qdpx 1 GB member": lambda d: ["qdpx", str(bomb_qdpx(d / "bomb.qdpx"))],
    "qdpx /dev/zero": lambda d: ["qdpx", "/dev/zero"],  # an endless file
}


@pytest.mark.parametrize("case", list(RISKY))
def test_hostile_input_that_could_exhaust_memory_gives_a_clean_message(case, tmp_path):
    if "/dev/zero" in case and not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero on this system")
    args = RISKY[case](tmp_path)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "cimstats", *args], capture_output=True, text=True, env=env,
                          timeout=120, preexec_fn=_capped)
    _check_output(proc.returncode, proc.stderr, args)
    assert ("not a regular file" if "/dev/zero" in case else "declares") in proc.stderr
