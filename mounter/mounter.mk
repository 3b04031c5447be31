# The privileged side: one binary per helper, sharing privilege.c.
MOUNTER_CFLAGS = $(BASE_CFLAGS) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags libcap-ng)
MOUNTER_COMMON = $(BUILD)/mounter/privilege.o
MOUNT_OBJS = $(patsubst mounter/%.c,$(BUILD)/mounter/%.o,$(wildcard mounter/mount*.c mounter/nfs*.c mounter/policy.c))
IDMAPFS_OBJS = $(patsubst mounter/%.c,$(BUILD)/mounter/%.o,$(wildcard mounter/idmapfs*.c)) $(BUILD)/mounter/policy.o

# The mount helper is linked dynamically, as idmapfs is. It needs glibc's
# NSS (getaddrinfo for a policy's server names honours nsswitch.conf and
# /etc/hosts, and libcap-ng's archive brings getpwuid and initgroups), which a
# static binary would still load as shared objects at run time, from the
# glibc it was built against. The loader costs about 0.3 ms of CPU a run.
$(BUILD)/mounter/%.o: mounter/%.c $(wildcard mounter/*.h) include/nfsv3driver.h
	@mkdir -p $(@D)
	$(CC) $(MOUNTER_CFLAGS) -c -o $@ $<

$(HELPER_DIR)/nfsv3driver-mount: $(MOUNT_OBJS) $(MOUNTER_COMMON)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs libcap-ng)

$(HELPER_DIR)/nfsv3driver-idmapfs: $(IDMAPFS_OBJS) $(MOUNTER_COMMON)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -pthread -o $@ $^ $(shell $(PKG_CONFIG) --libs libcap-ng)

MOUNTER_BINS = $(if $(MOUNT_OBJS),$(HELPER_DIR)/nfsv3driver-mount) $(if $(IDMAPFS_OBJS),$(HELPER_DIR)/nfsv3driver-idmapfs)
ALL_TARGETS += $(MOUNTER_BINS)
INSTALL_HELPERS += $(MOUNTER_BINS)
