# Benchmarks (not tests): `make bench` builds and runs each of them and prints
# its table.  bench/control/ measures the control path and the daemon's memory.
.PHONY: bench bench-control
bench: bench-control

# The load generators talk HTTP through the tools' small client (tools/client.h).
BENCH_CFLAGS = $(BASE_CFLAGS) -Itools $(CFLAGS)

$(BUILD)/bench/ctlbench: bench/control/ctlbench.c $(CLIENT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -pthread -o $@ $^ -pthread

$(BUILD)/bench/spawnbench: bench/control/spawnbench.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags libuv) -o $@ $< $(shell $(PKG_CONFIG) --libs libuv)

bench-control: deps $(BIN_DIR)/nfsv3driver $(HELPER_DIR)/nfsv3driver-mount $(BUILD)/bench/ctlbench $(BUILD)/bench/spawnbench
	bench/control/run.sh $(BIN_DIR)/nfsv3driver $(HELPER_DIR) $(BUILD)/bench/ctlbench

# The data path: idmapfs against native and bindfs on local directories, and
# against native kernel NFS in the VM. Longer runs; not part of `make bench`.
.PHONY: bench-idmapfs bench-idmapfs-nfs
$(BUILD)/bench/floor: bench/idmapfs/floor.c
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(CFLAGS) -o $@ $<

bench-idmapfs: all $(BUILD)/bench/floor
	@packaging/deps.sh bench
	bench/idmapfs/run.sh

bench-idmapfs-nfs: all
	bench/idmapfs-nfs/run.sh

# LDAP bindings: Mount latency with a private slapd, and 64 at once. Not part of `make bench`.
.PHONY: bench-ldap
$(BUILD)/bench/ldapbench: bench/ldap/ldapbench.c $(CLIENT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -pthread -o $@ $^ -pthread

bench-ldap: all $(BUILD)/bench/ldapbench
	bench/ldap/run.sh $(BUILD)

# Mutual TLS against plain TCP (needs golang-go for its client).
.PHONY: bench-tls
bench-tls: all
	@packaging/deps.sh test
	bench/tls/run.sh $(BUILD)

# The sweep: 100,000 volman container starts, state size and RSS over time.
# Not part of `make bench` (it runs for minutes).
.PHONY: bench-sweep
$(BUILD)/bench/sweepbench: bench/sweep/sweepbench.c $(CLIENT_OBJ)
	@mkdir -p $(@D)
	$(CC) $(BENCH_CFLAGS) -pthread -o $@ $^ -pthread

bench-sweep: all $(BUILD)/bench/sweepbench
	bench/sweep/run.sh $(BUILD)

# A start storm: 250 mapped bindings mounted at once over NFSv3 in the VM;
# errors, Mount latency, the daemon's peak RSS, the idmapfs processes' PSS.
# Not part of `make bench` (a VM boot, minutes under TCG).
.PHONY: bench-storm
bench-storm: all
	bench/storm-nfs/run.sh

# Misbehaving clients (2,000 idle, 2,000 slowloris, 100 MB bodies, 10,000
# pipelined requests unread) against a local daemon, with a probe List every
# 100 ms: its latency and the daemon's RSS per storm. Not part of `make bench`.
.PHONY: bench-clients
bench-clients: all $(BUILD)/test/clients/storm
	@packaging/deps.sh test
	bench/clients/run.sh $(BUILD)
