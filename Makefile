# sluice - a sidecarless service mesh with an eBPF data plane.
#
#   make            build/bin/{sluice-agent,sluicectl,sltest}, the BPF objects and
#                   the man pages (build/man; also `make man`)
#   make check      every test (unit, unit under ASan+UBSan, BPF, end-to-end)
#   make check-sanitize   the programs under ASan+UBSan (build/sanitize) through
#                   the e2e tests that run the most daemon code; any report fails
#   make demo       a simulated cluster with a service and three backends
#   make bench      side-by-side benchmarks, results in bench/results/ (bench/README.md);
#                   QUICK=1 for a two-minute smoke run
#   make deps       install the Debian packages (scripts/install-deps.sh)
#   make V=1        show the commands
#   make vmtest     the BPF and end-to-end suites in QEMU on Debian's 5.10, 6.1
#                   and 6.12 kernels (KERNELS="5.10 6.1", KERNEL_IMAGE=bzImage;
#                   vmtests/README.md)
#   make vmtest-selftest   prove the VM run fails on a program the verifier
#                   rejects (builds BPF_TEST_BROKEN=1 into build/broken)
#   make BPF_TEST_BROKEN=1 BUILD=build/broken   a deliberately broken datapath
#
# Everything generated goes to build/; nothing generated is committed.

BUILD    ?= build
CC       ?= cc
CLANG    ?= clang
BPFTOOL  ?= bpftool
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

WARN     := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
# snprintf truncation is bounded and checked where it matters
UWARN    := -Wno-format-truncation
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 $(WARN) $(UWARN) -D_GNU_SOURCE -MMD -MP \
	-Iheaders -Iuserspace -I$(BUILD)
LDLIBS   := -lbpf -lelf -lz -ljansson -lfyaml -lnghttp2 -lssl -lcrypto -lpthread
# libcurl: sluice-control's etcd client (control/etcd.c) only, and the
# binaries that link control/*.c (unit tests, fuzz harnesses)
CURL_LIBS := -lcurl
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) $(WARN) \
	-Iheaders -I$(BUILD) -Ibpf -MMD -MP
# Test only: plant a construct the verifier rejects (bpf/lib/test_broken.h).
# Use a separate BUILD directory so the normal build is never clobbered.
ifeq ($(BPF_TEST_BROKEN),1)
BPF_CFLAGS += -DSLUICE_TEST_BROKEN
endif

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(BPF_SRCS))

# userspace/lib: one folder per circle of users, each built as a static
# archive (build/lib/libsl-NAME.a), so a program links only the modules it
# calls and the folder says who may include it (checked with grep of the
# #includes; each folder includes only the ones listed after it):
#   compile the config -> per-node snapshot compiler and the numeric
#           identities: sluice-control, and sluicectl's analyze (never
#           the control plane's server or store)
#   config  YAML config, schema, model, cross-resource checks, diagnostics:
#           sluice-control and sluicectl (validate, store, analyze)
#   node    snapshot, the LB and policy maps: sluice-agent (reconcile),
#           sluice-proxy (reads the snapshot), sluicectl (inspect, fastpath),
#           sluice-control (re-parses what it compiled)
#   wire    PKI, HTTP/2, the agent-proxy link: every daemon and sluicectl
#           (proxylink: agent and proxy only)
#   core    log, files, host facts, buffers, addresses, bpf maps, CLI
#           tables, the event loop: everyone, the CNI plugin included
LIB_GROUPS := compile config node wire core
LIB_SRCS   := $(foreach g,$(LIB_GROUPS),$(wildcard userspace/lib/$(g)/*.c))
lib_a       = $(foreach g,$(1),$(BUILD)/lib/libsl-$(g).a)
AGENT_SRCS := $(filter-out userspace/agent/main.c,$(wildcard userspace/agent/*.c))
CTL_SRCS   := $(wildcard userspace/ctl/*.c)
# the built-in install profiles, in profile_names[] order (ctl/profile.c)
PROFILES   := $(addprefix profiles/,default.yaml demo.yaml minimal.yaml empty.yaml podman.yaml)
CONTROL_SRCS := $(filter-out userspace/control/main.c,$(wildcard userspace/control/*.c))
PROXY_SRCS := $(filter-out userspace/proxy/main.c,$(wildcard userspace/proxy/*.c))
CNI_SRCS   := $(filter-out userspace/cni/main.c,$(wildcard userspace/cni/*.c))
UNIT_SRCS  := $(wildcard tests/unit/*.c)
BPFT_SRCS  := $(wildcard tests/bpf/*.c)

obj = $(patsubst %.c,$(BUILD)/$(2)/%.o,$(1))

AGENT_OBJS := $(call obj,$(AGENT_SRCS),obj)
CONTROL_OBJS := $(call obj,$(CONTROL_SRCS),obj)
PROXY_OBJS := $(call obj,$(PROXY_SRCS),obj)
CNI_OBJS   := $(call obj,$(CNI_SRCS),obj)
BINS := $(BUILD)/bin/sluice-agent $(BUILD)/bin/sluice-proxy $(BUILD)/bin/sluice-control \
	$(BUILD)/bin/sluicectl \
	$(BUILD)/bin/sltest $(BUILD)/bin/sluice-simcluster $(BUILD)/bin/sluice-cni \
	$(BUILD)/bin/sl-watchers
TEST_BINS := $(BUILD)/tests/unit $(BUILD)/tests/unit-asan $(BUILD)/tests/bpf

MAN_PAGES := $(BUILD)/man/sluicectl.1 $(BUILD)/man/sluice-agent.8 $(BUILD)/man/sluice-control.8 \
	$(BUILD)/man/sluice-cni.8 $(BUILD)/man/sluice-proxy.8

.PHONY: all man deps check check-sanitize test-bins demo bench clean vmtest vmtest-selftest fuzz fuzz-bins FORCE
all: $(BINS) $(MAN_PAGES)

# Missing packages are installed before anything is built.
DEPS_STAMP := $(BUILD)/.deps-ok
$(DEPS_STAMP): scripts/install-deps.sh
	$(Q)mkdir -p $(@D)
	$(Q)scripts/install-deps.sh --check >/dev/null || scripts/install-deps.sh
	$(Q)touch $@
deps:
	scripts/install-deps.sh

$(BUILD)/vmlinux.h: | $(DEPS_STAMP)
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BUILD)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# Userspace objects need the skeletons to exist before they are compiled.
$(BUILD)/obj/%.o: %.c | $(BPF_SKELS) $(DEPS_STAMP)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/asan/%.o: %.c | $(BPF_SKELS) $(DEPS_STAMP)
	$(call msg,CC-ASAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) -c $< -o $@

# each folder of userspace/lib as an archive (see LIB_GROUPS)
define lib_archive
$(BUILD)/lib/libsl-$(1).a: $(call obj,$(wildcard userspace/lib/$(1)/*.c),obj)
	$$(call msg,AR,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)rm -f $$@ && $(AR) rcs $$@ $$^
endef
$(foreach g,$(LIB_GROUPS),$(eval $(call lib_archive,$(g))))

$(BUILD)/bin/sluice-agent: $(BUILD)/obj/userspace/agent/main.o $(AGENT_OBJS) \
		$(call lib_a,node wire core)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bin/sluice-proxy: $(BUILD)/obj/userspace/proxy/main.o $(PROXY_OBJS) \
		$(call lib_a,node wire core)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/bin/sluice-control: $(BUILD)/obj/userspace/control/main.o $(CONTROL_OBJS) \
		$(call lib_a,compile config node wire core)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) $(CURL_LIBS)

# the fan-out bench's map-less agents: the agent's own sync*.c, many per process
$(BUILD)/bin/sl-watchers: $(BUILD)/obj/bench/watchers.o $(BUILD)/obj/userspace/agent/sync.o \
		$(BUILD)/obj/userspace/agent/sync_watch.o \
		$(call lib_a,node wire core)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# the CNI plugin: run at every container start, so it links only jansson
$(BUILD)/bin/sluice-cni: $(BUILD)/obj/userspace/cni/main.o $(CNI_OBJS) $(call lib_a,core)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ -ljansson

# profiles/*.yaml as C strings: sluicectl carries its profiles
$(BUILD)/gen/profiles.c: $(PROFILES) scripts/embed.sh
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)scripts/embed.sh profile_text $(PROFILES) > $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(call msg,CC,$@)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

CTL_LIB_OBJS := $(BUILD)/obj/userspace/ctl/profile.o $(BUILD)/obj/userspace/ctl/ctl.o \
	$(BUILD)/gen/profiles.o

$(BUILD)/bin/sluicectl: $(call obj,$(CTL_SRCS),obj) $(BUILD)/gen/profiles.o \
		$(call lib_a,compile config node wire core)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

# The build's version: git describe, or 0.1.0 outside a git checkout.
# lib/core/cli.o holds it for every program and is rebuilt when it changes.
SLUICE_VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1.0)
$(BUILD)/gen/version.h: FORCE
	$(Q)mkdir -p $(@D)
	$(Q)printf '#define SLUICE_VERSION "%s"\n' '$(SLUICE_VERSION)' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
$(BUILD)/obj/userspace/lib/core/cli.o $(BUILD)/asan/userspace/lib/core/cli.o \
	$(BUILD)/fuzz/obj/userspace/lib/core/cli.o: $(BUILD)/gen/version.h
FORCE:

# Man pages, printed by the programs from their option and command tables.
man: $(MAN_PAGES)
define man_page
$(BUILD)/man/%.$(1): $(BUILD)/bin/%
	$$(call msg,MAN,$$@)
	$(Q)mkdir -p $$(@D)
	$(Q)$$< --man > $$@
endef
$(foreach s,1 8,$(eval $(call man_page,$(s))))

# the simulated cluster, beside the programs: `sluicectl install` copies it
# for the demo profile
$(BUILD)/bin/sluice-simcluster: tests/simcluster
	$(Q)mkdir -p $(@D)
	$(Q)install -m 0755 $< $@

# the test peer: sltest.c (main, the contract) and its parts beside it
$(BUILD)/bin/sltest: $(call obj,$(wildcard tests/tools/*.c),obj)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@

$(BUILD)/tests/unit: $(call obj,$(UNIT_SRCS),obj) $(AGENT_OBJS) $(CONTROL_OBJS) \
		$(CTL_LIB_OBJS) $(CNI_OBJS) $(PROXY_OBJS) $(call lib_a,$(LIB_GROUPS))
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) $(CURL_LIBS) -lcriterion

$(BUILD)/tests/unit-asan: $(call obj,$(UNIT_SRCS) $(AGENT_SRCS) $(CONTROL_SRCS) $(LIB_SRCS) $(CNI_SRCS) \
		$(PROXY_SRCS),asan) \
		$(call obj,userspace/ctl/profile.c userspace/ctl/ctl.c,asan) $(BUILD)/gen/profiles.o
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(SANFLAGS) $^ -o $@ $(LDLIBS) $(CURL_LIBS) -lcriterion

$(BUILD)/tests/bpf: $(call obj,$(BPFT_SRCS),obj) $(AGENT_OBJS) $(call lib_a,node wire core)
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS) -lcriterion

test-bins: $(BINS) $(TEST_BINS) $(MAN_PAGES)

check: test-bins
	$(Q)tests/run.sh $(BUILD)

# The programs built with ASan+UBSan into build/sanitize, and the e2e tests
# in SANITIZE_E2E run with them. Every sanitizer report (ASan, LSan, UBSan),
# background daemons' too, is written to build/sanitize/sanitizer-logs; any
# report there fails the target and is printed. Both runtimes are linked
# statically: GCC's shared UBSan runtime would set ASan's report path
# instead of its own and write its reports to stderr.
# The whole e2e suite takes 16 minutes under the sanitizers; these take
# about 5 and run the most daemon code: the control plane's sync, API
# refusals and restarts (agent adoption, last good snapshot), HBONE through
# both proxies with capture and STRICT, the HBONE refusals, policy, and
# install/verify/uninstall. test_h2_flood bounds the daemons' memory,
# which ASan multiplies.
SANITIZE_E2E := test_control_sync test_control_auth test_control_restart test_hbone_capture \
	test_hbone_refuse test_policy test_install
SANITIZE_LOGS := $(CURDIR)/build/sanitize/sanitizer-logs
check-sanitize:
	$(Q)$(MAKE) --no-print-directory BUILD=build/sanitize CFLAGS="-O1 -g $(SANFLAGS) \
		-static-libasan -static-libubsan" $(addprefix build/sanitize/bin/,$(notdir $(BINS)))
	$(Q)rm -rf $(SANITIZE_LOGS) && mkdir -p $(SANITIZE_LOGS)
	$(Q)ASAN_OPTIONS=detect_leaks=1:log_path=$(SANITIZE_LOGS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SANITIZE_LOGS)/ubsan \
	SLUICE_SUITES=e2e SLUICE_E2E_ONLY="$(SANITIZE_E2E)" tests/run.sh build/sanitize; rc=$$?; \
	for f in $(SANITIZE_LOGS)/*; do [ -f "$$f" ] || continue; rc=1; \
		echo "== sanitizer report $$f:"; cat "$$f"; done; \
	[ $$rc -eq 0 ] && echo "check-sanitize: no sanitizer report"; exit $$rc

# Verifier verdict and instruction count of every program (vmtests/).
$(BUILD)/vmtests/verifier-stats: $(BUILD)/obj/vmtests/verifier-stats.o
	$(call msg,LD,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

VMTEST_BINS := $(BINS) $(BUILD)/tests/bpf $(BUILD)/vmtests/verifier-stats $(BPF_OBJS)

# make vmtest [KERNELS="5.10 6.1 6.12"] [KERNEL_IMAGE=path/to/bzImage]
vmtest: $(VMTEST_BINS)
	$(Q)vmtests/run.sh --build $(BUILD) $(if $(KERNEL_IMAGE),--image $(KERNEL_IMAGE)) \
		$(if $(KERNELS),--kernels "$(KERNELS)")

# The harness must fail on a datapath the verifier rejects: build one into
# build/broken (never touching $(BUILD)) and expect the VM run to fail.
vmtest-selftest:
	$(Q)$(MAKE) --no-print-directory BUILD=build/broken BPF_TEST_BROKEN=1 \
		build/broken/bin/sluice-agent build/broken/bin/sluicectl build/broken/bin/sltest \
		build/broken/tests/bpf build/broken/vmtests/verifier-stats
	$(Q)vmtests/selftest.sh $(if $(KERNELS),--kernels "$(KERNELS)")

demo: $(BINS)
	$(Q)scripts/demo.sh $(BUILD)

bench: $(BINS)
	$(Q)bench/bench.sh $(BUILD) $(if $(filter 1,$(QUICK)),--quick)

clean:
	rm -rf $(BUILD)

include tests/fuzz/fuzz.mk

-include $(shell find $(BUILD)/obj $(BUILD)/asan $(BUILD)/bpf -name '*.d' -type f 2>/dev/null)
