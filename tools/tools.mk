# Tools an operator runs by hand against a running driver, each its own
# binary in bin/ beside the daemon and none of them part of it:
# nfsv3driver-smoke, the end-to-end check (`nfsv3driver smoke` runs it).
# client.c, the small blocking HTTP client, is smoke's; the test harness
# and the benches link it too (CLIENT_OBJ).
CLIENT_OBJ = $(BUILD)/tools/client.o
TOOLS_CFLAGS = $(BASE_CFLAGS) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags jansson)
TOOLS_LIBS = $(shell $(PKG_CONFIG) --libs jansson)

$(BUILD)/tools/%.o: tools/%.c $(wildcard tools/*.h) include/nfsv3driver.h
	@mkdir -p $(@D)
	$(CC) $(TOOLS_CFLAGS) -c -o $@ $<

$(BIN_DIR)/nfsv3driver-smoke: $(BUILD)/tools/smoke.o $(CLIENT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TOOLS_LIBS)

ALL_TARGETS += $(BIN_DIR)/nfsv3driver-smoke
INSTALL_BINS += $(BIN_DIR)/nfsv3driver-smoke
