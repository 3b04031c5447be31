# The daemon: every driver/*.c is part of it; main.c alone is left out of the
# unit-test link so that test/test_*.c can link the rest.
DRIVER_PKGS = libuv jansson mount openssl
DRIVER_CFLAGS = $(BASE_CFLAGS) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags $(DRIVER_PKGS))
# libldap before the packages: linked statically (the release), it needs OpenSSL after it.
DRIVER_LIBS = -lhttp_parser -lldap -llber $(shell $(PKG_CONFIG) --libs $(DRIVER_PKGS)) -pthread
DRIVER_SRCS = $(wildcard driver/*.c)
# The policy parser is the mount helper's, linked into both.
DRIVER_OBJS = $(patsubst driver/%.c,$(BUILD)/driver/%.o,$(DRIVER_SRCS)) $(BUILD)/mounter/policy.o
DRIVER_LIB_OBJS = $(filter-out $(BUILD)/driver/main.o,$(DRIVER_OBJS))

$(BUILD)/driver/%.o: driver/%.c $(wildcard driver/*.h) include/nfsv3driver.h
	@mkdir -p $(@D)
	$(CC) $(DRIVER_CFLAGS) -c -o $@ $<

$(BIN_DIR)/nfsv3driver: $(DRIVER_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(DRIVER_LIBS)

ALL_TARGETS += $(BIN_DIR)/nfsv3driver
INSTALL_BINS += $(BIN_DIR)/nfsv3driver
