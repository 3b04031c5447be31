# Every test/test_*.c is a Check suite linked with the shared harness and only
# the daemon objects it tests (test_<name>_OBJS below; none for the suites
# that drive the built binaries); `make test` runs them all, then the scripted
# stages (Docker engine, VM). Integration suites find the binaries through
# NFSV3_BUILD.
TEST_CFLAGS = $(DRIVER_CFLAGS) -Itest -Idriver -Itools $(shell $(PKG_CONFIG) --cflags check)
TEST_LIBS = $(shell $(PKG_CONFIG) --libs jansson check) -pthread
TEST_SRCS = $(wildcard test/test_*.c)
TEST_BINS = $(patsubst test/%.c,$(BUILD)/test/%,$(TEST_SRCS))
# The harness talks to the daemon through the tools' HTTP client (tools/client.h).
HARNESS_OBJS = $(patsubst test/%.c,$(BUILD)/test/%.o,$(wildcard test/harness*.c)) $(CLIENT_OBJ)
.SECONDARY: $(HARNESS_OBJS)

# The daemon objects each unit suite needs (driver/<name>.o); a suite not
# listed links only the harness.
test_http_OBJS = http
test_options_OBJS = options error
test_registry_OBJS = registry options error
test_state_OBJS = state upstream registry options error metrics log
test_metrics_OBJS = metrics
test_mountinfo_OBJS = mountinfo options error
test_kernel_OBJS = kernel helper process policy_gate options error log metrics
test_supervisor_OBJS = supervise helper process options error log metrics
test_lifecycle_OBJS = lifecycle registry state upstream kernel supervise helper process policy_gate options \
	error log metrics mountinfo directory
$(BUILD)/test/test_lifecycle: $(BUILD)/mounter/policy.o
test_reconcile_OBJS = reconcile $(test_lifecycle_OBJS)
$(BUILD)/test/test_reconcile: $(BUILD)/mounter/policy.o
# The policy gate links the parser it shares with the mount helper.
$(BUILD)/test/test_kernel: $(BUILD)/mounter/policy.o
# The policy parser lives with the mount helper (both sides link it).
$(BUILD)/test/test_policy: $(BUILD)/mounter/policy.o
# Suites with daemon objects also take the daemon's libraries.
test_suite_objs = $(patsubst %,$(BUILD)/driver/%.o,$($(1)_OBJS))
test_suite_libs = $(if $($(1)_OBJS),$(DRIVER_LIBS))

$(BUILD)/test/%.o: test/%.c $(wildcard test/*.h) $(wildcard driver/*.h) $(wildcard tools/*.h) include/nfsv3driver.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -c -o $@ $<

.SECONDEXPANSION:
$(BUILD)/test/test_%: $(BUILD)/test/test_%.o $(HARNESS_OBJS) $$(call test_suite_objs,test_$$*)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(call test_suite_libs,test_$*) $(TEST_LIBS)

# The misbehaving clients of the "clients" stage; its probes use the tools' client.
$(BUILD)/test/clients/storm: $(BUILD)/test/clients/storm.o $(CLIENT_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -pthread

test: test-deps
	@$(MAKE) --no-print-directory all $(TEST_BINS) $(BUILD)/test/clients/storm
	@NFSV3_BUILD=$(abspath $(BUILD)) test/run-tests.sh $(TEST_BINS)
