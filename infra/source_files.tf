# Which files of functions/ go into the source zip (main.tf builds it). Kept
# apart and free of providers so that tests/infra evaluates these expressions
# with `terraform console` on the real tree.

locals {
  functions_source_dir = "${path.module}/../functions"

  # Resolved from functions/requirements.txt by `make lock`; shipped in the zip
  # AS requirements.txt (the name the Cloud Functions buildpack installs).
  functions_lock_file = "requirements.lock"

  # Built, git-ignored files the deployed code serves (the playground bundle,
  # `make web`): the plan fails when one is missing (precondition in main.tf).
  functions_built_files = ["imagegen/api/static/playground.js"]
  functions_missing_built_files = sort(tolist(setsubtract(
    local.functions_built_files, local.functions_source_files,
  )))

  functions_source_files = sort([
    for f in fileset(local.functions_source_dir, "**") : f
    if !can(regex("(^|/)(__pycache__|\\.pytest_cache|\\.mypy_cache|\\.ruff_cache|\\.venv)/|\\.pyc$|(^|/)\\.env$|^requirements\\.(txt|lock)$", f))
  ])
}
