# The README's test command. Everything a test needs from outside Go (Debian packages, Maven
# artifacts, PyPI and npm packages) is installed by the interop suites' own setup scripts.
GO ?= go

.PHONY: test build run fuzz

test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

build:
	$(GO) build -o bin/yard ./cmd/yard

run:
	$(GO) run ./cmd/yard serve
