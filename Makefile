# The README's test command. Everything a test needs from outside Go (Debian packages, Maven
# artifacts, PyPI and npm packages) is installed by the interop suites' own setup scripts.
GO ?= go

# Systems the code must build and vet for, though only Linux runs the tests here (see
# internal/platform). Builds are cached, so after the first run this takes seconds.
CROSS_TARGETS ?= darwin/amd64 darwin/arm64 windows/amd64

.PHONY: test build run fuzz cross

test: cross
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 25m ./...

cross:
	@set -e; for t in $(CROSS_TARGETS); do \
		echo "build and vet for $$t"; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build ./...; \
		GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) vet ./...; \
	done

build:
	$(GO) build -o bin/yard ./cmd/yard

run:
	$(GO) run ./cmd/yard serve
