# Every test/test_*.c is a Check suite linked with the daemon's objects (minus
# main) and the shared harness; `make test` runs them all, then the scripted
# stages (Docker engine, VM). Integration suites find the binaries through
# NFSV3_BUILD.
TEST_CFLAGS = $(DRIVER_CFLAGS) -Itest -Idriver $(shell $(PKG_CONFIG) --cflags check)
TEST_LIBS = $(DRIVER_LIBS) $(shell $(PKG_CONFIG) --libs check) -pthread
TEST_SRCS = $(wildcard test/test_*.c)
TEST_BINS = $(patsubst test/%.c,$(BUILD)/test/%,$(TEST_SRCS))
HARNESS_OBJS = $(patsubst test/%.c,$(BUILD)/test/%.o,$(wildcard test/harness*.c))
.SECONDARY: $(HARNESS_OBJS)

$(BUILD)/test/%.o: test/%.c $(wildcard test/*.h) $(wildcard driver/*.h) include/nfsv3driver.h
	@mkdir -p $(@D)
	$(CC) $(TEST_CFLAGS) -c -o $@ $<

$(BUILD)/test/test_%: $(BUILD)/test/test_%.o $(HARNESS_OBJS) $(DRIVER_LIB_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS)

.PHONY: test-unit test-stages
test: test-deps all $(TEST_BINS)
	@test/run-tests.sh $(TEST_BINS)
