# The two commands of the README. Both install what is missing first (see .ci/setup).
SHELL := /bin/bash
.DEFAULT_GOAL := help
.PHONY: help run test build fmt lint

help:
	@echo "make run   build and serve the dashboard on http://127.0.0.1:3000 (SQLite, demo partner)"
	@echo "make test  run every test (unit, store on SQLite and PostgreSQL, routes, browser)"

build:
	.ci/setup build
	source .ci/env && cargo leptos build --release

# Dev mode explicitly: the server's own default is production.
run: build
	source .ci/env && APP_MODE=$${APP_MODE:-dev} exec ./target/release/server serve

test:
	.ci/test

fmt:
	cargo fmt --all

lint:
	source .ci/env && cargo clippy -p app -p server --features app/ssr --all-targets -- -D warnings
