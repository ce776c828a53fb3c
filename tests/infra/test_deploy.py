"""infra/deploy.sh run for real under bash, with stub `terraform` and `gcloud`.

The stubs record every call; the tests assert what reaches Terraform (the
variables, a TF_VAR_FILE relative to the caller's directory, the location of
an existing database, the extra arguments) and how the script stops. The
script must also run on the bash 3.2 of macOS, which cannot be installed
here: test_portable_to_bash_3_2 checks it statically for the bash-4-only
constructs and the unguarded empty-array expansions that 3.2 rejects under
`set -u`. The plan-time check of the Eventarc trigger region runs Terraform's
own variable validation with `terraform console` (variables.tf needs no
provider).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.infra.hcl import INFRA

DEPLOY_SH = INFRA / "deploy.sh"
SEP = "\x1f"

TERRAFORM_STUB = f"""#!/usr/bin/env bash
printf '%s{SEP}' "$@" >> "$STUB_LOG.terraform"; echo >> "$STUB_LOG.terraform"
if [[ "$1" == output ]]; then echo "out-${{3:-}}"; exit 0; fi
if [[ "$1" == apply && " $* " != *" -target="* && -n "${{FAIL_FULL_APPLIES:-}}" ]]; then
  n=$(cat "$STUB_LOG.fails" 2>/dev/null || echo 0)
  if (( n < FAIL_FULL_APPLIES )); then echo $((n + 1)) > "$STUB_LOG.fails"; exit 1; fi
fi
exit 0
"""

# `make web` builds the playground's bundle into functions/ before anything is zipped.
MAKE_STUB = f"""#!/usr/bin/env bash
printf '%s{SEP}' "$@" >> "$STUB_LOG.make"; echo >> "$STUB_LOG.make"
[[ -z "${{MAKE_FAILS:-}}" ]] || exit 2
exit 0
"""

GCLOUD_STUB = f"""#!/usr/bin/env bash
printf '%s{SEP}' "$@" >> "$STUB_LOG.gcloud"; echo >> "$STUB_LOG.gcloud"
case "$1 $2 $3" in
  "firestore databases describe")
    [[ -n "${{DB_LOCATION:-}}" ]] || exit 1; echo "$DB_LOCATION" ;;
  "secrets versions list")
    [[ " ${{SECRETS_WITHOUT_VERSION:-}} " == *" $4 "* ]] || echo "projects/p/secrets/$4/versions/1" ;;
  "secrets versions add") cat > /dev/null ;;
esac
exit 0
"""


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    terraform: list[list[str]]
    gcloud: list[list[str]]
    make: list[list[str]]
    caller: Path


def _calls(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split(SEP)[:-1] for line in path.read_text().splitlines()]


def _deploy(*args: str, env: dict[str, str] | None = None, var_file: str | None = None) -> Run:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "infra").mkdir()
        shutil.copy(DEPLOY_SH, root / "infra" / "deploy.sh")
        stubs = root / "bin"
        stubs.mkdir()
        for name, text in (("terraform", TERRAFORM_STUB), ("gcloud", GCLOUD_STUB), ("make", MAKE_STUB)):
            (stubs / name).write_text(text)
            (stubs / name).chmod(0o755)
        for tool in ("openssl", "tr", "sed", "dirname", "cat", "rm"):
            if not shutil.which(tool):
                pytest.skip(f"{tool} is not installed")
        caller = root / "caller"
        caller.mkdir()
        (caller / "prod.tfvars").write_text('name_prefix = "imagegen"\n')
        run_env = {
            "PATH": f"{stubs}:/usr/bin:/bin",
            "HOME": tmp,
            "STUB_LOG": str(root / "log"),
            "DEPLOY_RETRY_DELAY": "0",
        }
        if var_file is not None:
            run_env["TF_VAR_FILE"] = var_file
        run_env.update(env or {})
        proc = subprocess.run(
            [bash, "../infra/deploy.sh", *args],
            cwd=caller,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return Run(
            proc.returncode,
            proc.stdout,
            proc.stderr,
            _calls(root / "log.terraform"),
            _calls(root / "log.gcloud"),
            _calls(root / "log.make"),
            caller,
        )


def _applies(run: Run) -> tuple[list[list[str]], list[list[str]]]:
    applies = [c for c in run.terraform if c[0] == "apply"]
    targeted = [c for c in applies if any(a.startswith("-target=") for a in c)]
    return targeted, [c for c in applies if c not in targeted]


def test_reaches_terraform_with_the_callers_var_file_and_the_existing_database() -> None:
    run = _deploy("my-project", "europe-west1", "-var", "log_level=DEBUG",
                  env={"DB_LOCATION": "nam5"}, var_file="prod.tfvars")
    assert run.returncode == 0, run.stderr
    assert run.make == [["-C", "..", "--no-print-directory", "web"]]
    assert run.terraform[0] == ["init", "-input=false"]
    variables = [
        "-var", "project_id=my-project", "-var", "region=europe-west1",
        "-var-file", f"{run.caller}/prod.tfvars",
        "-var", "existing_firestore_location=nam5",
    ]
    targeted, full = _applies(run)
    assert targeted == [[
        "apply", *variables,
        "-target=google_project_service.this",
        "-target=google_secret_manager_secret.gemini_api_key",
        "-target=google_secret_manager_secret.webhook",
    ]]
    assert full == [["apply", *variables, "-var", "log_level=DEBUG"]]
    assert ["output", "-raw", "api_url"] in run.terraform
    assert "out-api_url" in run.stdout
    describe = [c for c in run.gcloud if c[:3] == ["firestore", "databases", "describe"]]
    assert describe and "--project=my-project" in describe[0]
    # Secrets already have versions: nothing added.
    assert not [c for c in run.gcloud if c[:3] == ["secrets", "versions", "add"]]


def test_empty_arrays_auto_approve_and_no_database() -> None:
    """No TF_VAR_FILE, no extra arguments, no database: the empty expansions
    must vanish (not become "" arguments) under `set -u`."""
    run = _deploy("my-project", "us-central1", env={"AUTO_APPROVE": "1"})
    assert run.returncode == 0, run.stderr
    targeted, full = _applies(run)
    base = ["apply", "-input=false", "-auto-approve", "-var", "project_id=my-project", "-var", "region=us-central1"]
    assert targeted[0][: len(base)] == base
    assert full == [base]
    assert all("" not in call for call in run.terraform)


def test_interactive_apply_passes_no_approval_flags() -> None:
    run = _deploy("my-project", "us-central1")
    assert run.returncode == 0, run.stderr
    assert not any("-auto-approve" in call for call in run.terraform)


def test_missing_var_file_stops_before_terraform() -> None:
    run = _deploy("my-project", "us-central1", var_file="nope.tfvars")
    assert run.returncode == 2
    assert f"{run.caller}/nope.tfvars" in run.stderr
    assert run.terraform == []


def test_absolute_var_file_is_kept() -> None:
    with tempfile.NamedTemporaryFile(suffix=".tfvars") as fh:
        run = _deploy("my-project", "us-central1", var_file=fh.name)
        assert run.returncode == 0, run.stderr
        assert ["-var-file", fh.name] == _applies(run)[1][0][5:7]


def test_failed_apply_is_retried_once() -> None:
    run = _deploy("my-project", "us-central1", env={"FAIL_FULL_APPLIES": "1"})
    assert run.returncode == 0, run.stderr
    assert len(_applies(run)[1]) == 2
    assert "retrying once" in run.stderr
    failing = _deploy("my-project", "us-central1", env={"FAIL_FULL_APPLIES": "2"})
    assert failing.returncode != 0
    assert len(_applies(failing)[1]) == 2


def test_generates_the_webhook_secret_and_stops_without_the_gemini_key() -> None:
    run = _deploy("my-project", "us-central1", env={"SECRETS_WITHOUT_VERSION": "webhook-secret gemini-api-key"})
    assert run.returncode == 1
    assert ["secrets", "versions", "add", "webhook-secret", "--project=my-project", "--data-file=-"] in run.gcloud
    assert "gemini-api-key" in run.stderr and "GEMINI_API_KEY" in run.stderr
    assert _applies(run)[1] == []  # never applied the functions without their secret
    with_key = _deploy("my-project", "us-central1",
                       env={"SECRETS_WITHOUT_VERSION": "gemini-api-key", "GEMINI_API_KEY": "k"})
    assert with_key.returncode == 0, with_key.stderr
    assert ["secrets", "versions", "add", "gemini-api-key", "--project=my-project", "--data-file=-"] in with_key.gcloud


def test_a_failed_bundle_build_stops_before_terraform() -> None:
    run = _deploy("my-project", "us-central1", env={"MAKE_FAILS": "1"})
    assert run.returncode != 0
    assert run.make == [["-C", "..", "--no-print-directory", "web"]]
    assert run.terraform == []


def test_usage_without_arguments() -> None:
    run = _deploy()
    assert run.returncode == 2
    assert "TF_VAR_FILE" in run.stdout and "gcloud auth application-default login" in run.stdout
    assert "set -euo" not in run.stdout
    assert run.terraform == []


# Constructs bash 3.2 (macOS) does not have.
BASH4_ONLY = {
    r"\bdeclare\s+-[a-zA-Z]*[Ann]": "associative arrays / namerefs (declare -A / -n)",
    r"\b(mapfile|readarray|coproc)\b": "mapfile/readarray/coproc",
    r"\$\{[A-Za-z_][A-Za-z0-9_]*(,,|\^\^|,|\^)[}]": "case conversion ${x,,} / ${x^^}",
    r"\|&": "|& pipes",
    r"&>>": "&>> redirection",
    r";;&|;&": "case fall-through ;;& / ;&",
    r"\$\{[A-Za-z_][A-Za-z0-9_]*\[-1\]\}": "negative array index",
    r"\bwait\s+-n\b": "wait -n",
    r"\$EPOCHSECONDS|\$EPOCHREALTIME|\$\{?BASH_ARGV0": "bash 5 variables",
}


def test_portable_to_bash_3_2() -> None:
    text = DEPLOY_SH.read_text(encoding="utf-8")
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for pattern, what in BASH4_ONLY.items():
        assert not re.search(pattern, code), f"deploy.sh uses {what}, which bash 3.2 lacks"
    # "${a[@]}" of an empty array is an unbound-variable error under set -u
    # before bash 4.4: every array expansion must be the guarded form.
    for match in re.finditer(r'"\$\{([A-Za-z_][A-Za-z0-9_]*)\[@\]\}"', code):
        name = match.group(1)
        guard = f"${{{name}[@]+"
        assert code[: match.start()].endswith(guard), (
            f"deploy.sh expands \"${{{name}[@]}}\" unguarded: write ${{{name}[@]+\"${{{name}[@]}}\"}}"
        )
    assert '"$@"' not in code.replace('${1+"$@"}', ""), 'write ${1+"$@"} for the extra arguments'
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    if shutil.which("bash"):
        syntax = subprocess.run(["bash", "-n", str(DEPLOY_SH)], capture_output=True, text=True, check=False)
        assert syntax.returncode == 0, syntax.stderr


# ---------------------------------------------------------------------------
# The Eventarc trigger region, checked at plan time (variables.tf validations)
# ---------------------------------------------------------------------------


def _validate(**variables: str) -> str:
    """Terraform's errors for these variable values ("" when they are valid)."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform CLI is not installed")
    args = ["-var", "project_id=my-project", "-var", "region=europe-west1"]
    for name, value in variables.items():
        args += ["-var", f"{name}={value}"]
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(INFRA / "variables.tf", tmp)
        proc = subprocess.run(
            [terraform, "console", "-no-color", *args],
            input="var.region\n",
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "TF_IN_AUTOMATION": "1"},
        )
    errors = proc.stderr if "Error" in proc.stderr else ""
    if not errors:
        assert '"europe-west1"' in proc.stdout, proc.stdout + proc.stderr
    return " ".join(errors.split())


def test_trigger_region_is_checked_before_apply() -> None:
    assert _validate() == ""
    # An existing database elsewhere: the plan fails and says what to set.
    message = _validate(existing_firestore_location="nam5")
    assert 'set firestore_location = "nam5"' in message
    assert _validate(existing_firestore_location="nam5", firestore_location="nam5") == ""
    assert _validate(existing_firestore_location="europe-west1") == ""
    # Using an existing database without saying where it is.
    assert "set firestore_location" in _validate(create_firestore_database="false")
    assert _validate(create_firestore_database="false", firestore_location="eur3") == ""
