# Template tests for bosh-job/: every property renders with its (upstream)
# default, takes upstream's formats, maps to the daemon's flags, and a bad
# value fails the render with a message naming it.  Run by run.sh.
require 'minitest/autorun'
require 'open3'
require 'tmpdir'
require_relative '../../bosh-job/render'

PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n"
TLS = { 'nfsv3driver.tls.ca_cert' => PEM_CERT, 'nfsv3driver.tls.server_cert' => PEM_CERT,
	'nfsv3driver.tls.server_key' => PEM_KEY, 'nfsv3driver.tls.client_cert' => PEM_CERT,
	'nfsv3driver.tls.client_key' => PEM_KEY }.freeze
LDAP = { 'nfsv3driver.ldap_host' => 'ldap.example.com', 'nfsv3driver.ldap_svc_user' => 'cn=svc,dc=example,dc=com',
	'nfsv3driver.ldap_svc_password' => "s3cret 'quoted' $(x)", 'nfsv3driver.ldap_user_fqdn' => 'cn=Users,dc=example,dc=com',
	'nfsv3driver.ldap_ca_cert' => PEM_CERT }.freeze
JOB = '/var/vcap/jobs/nfsv3driver'

class TemplateTest < Minitest::Test
	def render(overrides = {}) = JobRender.render(overrides.transform_keys { |k| k.include?('.') && k.start_with?('nfsv3driver.') ? k : "nfsv3driver.#{k}" })

	# What bash makes of config/properties.sh: the variables and the arrays.
	def shell(files, *vars)
		Dir.mktmpdir do |dir|
			File.write("#{dir}/p.sh", files['config/properties.sh'])
			script = vars.map { |v| v.end_with?('[@]') ? %(printf '%s\\0' "${#{v}}"; printf '\\1\\0') : %(printf '%s\\0' "$#{v}") }.join(';')
			out, err, st = Open3.capture3('bash', '-euc', ". #{dir}/p.sh; #{script}")
			assert st.success?, "bash failed on properties.sh: #{err}"
			items = out.split("\0", -1)[0..-2]
			vars.map do |v|
				next items.shift unless v.end_with?('[@]')
				list = []
				list << items.shift until items.first == "\1"
				items.shift
				list
			end
		end
	end
	def args(files) = shell(files, 'DRIVER_ARGS[@]').first
	def notes(files) = shell(files, 'NOTES[@]').first

	def refused(overrides, property, pattern = //)
		e = assert_raises(StandardError, "#{overrides} should be refused") { render(overrides) }
		assert_match(/\Anfsv3driver\.#{Regexp.escape(property)}: /, e.message)
		assert_match(pattern, e.message)
		e.message
	end

	def test_spec_declares_every_upstream_property_with_upstream_defaults
		spec = JobRender.spec['properties']
		upstream = { 'statd_port' => 41793, 'listen_addr' => '127.0.0.1:7589', 'debug_addr' => '127.0.0.1:7689',
			'admin_addr' => '127.0.0.1:7590', 'driver_path' => '/var/vcap/data/voldrivers',
			'cell_mount_path' => '/var/vcap/data/volumes/nfs', 'log_level' => 'info', 'log_time_format' => 'rfc3339',
			'disable' => false, 'ldap_svc_user' => '', 'ldap_svc_password' => '', 'ldap_host' => '', 'ldap_port' => 389,
			'ldap_proto' => 'tcp', 'ldap_user_fqdn' => '', 'ldap_ca_cert' => '', 'tls.ca_cert' => '',
			'tls.server_cert' => '', 'tls.server_key' => '', 'tls.client_cert' => '', 'tls.client_key' => '',
			'ssl.insecure_skip_verify' => false }
		upstream.each do |name, default|
			assert spec.key?("nfsv3driver.#{name}"), "spec lacks upstream's nfsv3driver.#{name}"
			assert_equal default, spec["nfsv3driver.#{name}"]['default'], "default of nfsv3driver.#{name}"
		end
		spec.each { |name, p| assert p.key?('default'), "#{name} has no default" }
		refute_match(/rep\.volman/, File.read(File.join(JobRender::DIR, 'spec')) + File.read(File.join(JobRender::DIR, 'README.md')))
	end

	def test_defaults
		f = render
		assert_equal ['--name', 'nfsv3driver', '--listen', 'tcp://127.0.0.1:7589', '--admin', 'tcp://127.0.0.1:7590',
			'--mount-root', '/var/vcap/data/volumes/nfs', '--drivers-path', '/var/vcap/data/voldrivers',
			'--helper-timeout', '30', '--max-parallel', '16', '--forget-unmounted-after', '1h', '--app-uid', '2000', '--app-gid', '2000',
			'--log-level', 'info', '--allowed-nfs-options',
			'rsize,wsize,timeo,retrans,actimeo,acregmin,acregmax,acdirmin,acdirmax,lookupcache,nocto,nolock,noac'], args(f)
		assert_equal ['0', 'vcap', 'http://127.0.0.1:7590', '0', '0', '1', '41793', '/var/vcap/data/rpc_statd',
			'/var/vcap/packages/nfs-rpc/sbin/rpcbind', '/var/vcap/packages/nfs-rpc/sbin/rpc.statd', '60', '120', '900', 'rep'],
			shell(f, 'DISABLE', 'RUN_AS', 'ADMIN_URL', 'TLS', 'LDAP', 'START_RPC', 'STATD_PORT', 'STATD_STATE_DIR',
			      'RPCBIND_PATH', 'STATD_PATH', 'STOP_TIMEOUT', 'DRAIN_TIMEOUT', 'DRAIN_REP_TIMEOUT', 'DRAIN_REP_PROCESS')
		assert_equal 2, notes(f).size
		assert_match(/debug_addr 127.0.0.1:7689 accepted and ignored/, notes(f)[0])
		assert_match(/log_time_format rfc3339/, notes(f)[1])
		assert_match(/check process nfsv3driver-statd.*port 41793 type tcp/m, f['monit'])
		assert_match(/port 111 type tcp/, f['monit'])
		assert_match(/host 127.0.0.1 port 7590 protocol http\s+request "\/ping"/, f['monit'])
		assert_match(/depends on nfsv3driver-statd/, f['monit'])
		%w[config/certs/ca.crt config/certs/server.key config/ldap_svc_password].each { |k| assert_equal '', f[k] }
	end

	def test_upstream_address_formats
		f = render('listen_addr' => '0.0.0.0:8589', 'admin_addr' => ':8590')
		assert_equal 'tcp://0.0.0.0:8589', args(f)[args(f).index('--listen') + 1]
		assert_equal 'tcp://0.0.0.0:8590', args(f)[args(f).index('--admin') + 1]
		assert_equal ['http://127.0.0.1:8590'], shell(f, 'ADMIN_URL')
		assert_match(/host 127.0.0.1 port 8590 protocol http/, f['monit'])
		f = render('listen_addr' => '[::1]:7589', 'admin_addr' => 'localhost:7590')
		assert_equal 'tcp://[::1]:7589', args(f)[args(f).index('--listen') + 1]
		assert_equal ['http://localhost:7590'], shell(f, 'ADMIN_URL')
		f = render('debug_addr' => '10.0.0.1:17689')
		assert_match(/debug_addr 10.0.0.1:17689 accepted and ignored/, notes(f)[0])
	end

	def test_bad_addresses
		%w[listen_addr admin_addr debug_addr].each do |n|
			['127.0.0.1', '127.0.0.1:0', '127.0.0.1:65536', 'tcp://127.0.0.1:7589', 'a b:1', '127.0.0.1:', 7589, "h:1\n"].each do |v|
				refused({ n => v }, n)
			end
		end
		refused({ 'admin_addr' => '127.0.0.1:7589' }, 'admin_addr', /must differ from listen_addr/)
	end

	def test_paths
		f = render('driver_path' => '/var/vcap/data/other-drivers/', 'cell_mount_path' => '/data/nfs mounts')
		assert_equal '/var/vcap/data/other-drivers', args(f)[args(f).index('--drivers-path') + 1]
		assert_equal '/data/nfs mounts', args(f)[args(f).index('--mount-root') + 1]
		assert_equal ['/var/vcap/data/other-drivers/certs/nfsv3driver'], shell(f, 'TLS_CLIENT_DIR')
		%w[driver_path cell_mount_path rpcbind_path statd_path statd_state_dir].each do |n|
			['relative/dir', '/a/../b', '', nil.to_s, 5].each { |v| refused({ n => v }, n) }
		end
	end

	def test_numbers
		f = render('statd_port' => 4000, 'helper_timeout' => '45', 'max_parallel' => 4, 'app_uid' => 1001, 'app_gid' => 1002,
			'stop_timeout' => 5, 'drain_timeout' => 7, 'drain_rep_timeout' => 0)
		assert_equal %w[4000 5 7 0], shell(f, 'STATD_PORT', 'STOP_TIMEOUT', 'DRAIN_TIMEOUT', 'DRAIN_REP_TIMEOUT')
		assert_match(/port 4000 type tcp/, f['monit'])
		a = args(f)
		assert_equal %w[45 4 1001 1002], %w[--helper-timeout --max-parallel --app-uid --app-gid].map { |x| a[a.index(x) + 1] }
		{ 'statd_port' => [0, 65536, 'abc', -1, '41793x', true], 'ldap_port' => [0, 70000, 'ldap'],
			'helper_timeout' => [0, 3601], 'max_parallel' => [0, 1025], 'app_uid' => [0, 4294967295, 'vcap'],
			'app_gid' => [0, -5], 'stop_timeout' => [0], 'drain_timeout' => [0, 'x'], 'drain_rep_timeout' => [-1, 86401],
			'ldap_timeout' => [-1, 'soon'] }.each do |n, vs|
			vs.each { |v| refused({ n => v }, n, /expected a whole number/) }
		end
	end

	def test_forget_unmounted_after
		a = ->(v) { args(render('forget_unmounted_after' => v)).then { |x| x[x.index('--forget-unmounted-after') + 1] } }
		assert_equal '0', a.('0')
		assert_equal '0', a.(0)
		assert_equal '90', a.(90)
		assert_equal '30m', a.('30m')
		assert_equal '366d', a.('366d')
		['1h30m', '-1', -5, '5x', '', '1.5h', '367d', "1h\n", true, 'never'].each do |v|
			refused({ 'forget_unmounted_after' => v }, 'forget_unmounted_after', /expected a duration such as 90s/)
		end
	end

	def test_idmapfs_passthrough
		refute_includes args(render), '--no-idmapfs-passthrough'
		refute_includes args(render('idmapfs_passthrough' => true)), '--no-idmapfs-passthrough'
		assert_includes args(render('idmapfs_passthrough' => false)), '--no-idmapfs-passthrough'
		['yes', 'false', 0, ''].each { |v| refused({ 'idmapfs_passthrough' => v }, 'idmapfs_passthrough', /expected true or false/) }
	end

	def test_log_level_and_time_format
		%w[debug info error].each { |l| assert_equal l, args(render('log_level' => l))[args(render('log_level' => l)).index('--log-level') + 1] }
		f = render('log_level' => 'fatal', 'log_time_format' => 'unix-epoch')
		assert_equal 'error', args(f)[args(f).index('--log-level') + 1]
		assert_match(/fatal logs as error/, notes(f).join)
		refute_match(/log_time_format/, notes(f).join)
		refused({ 'log_level' => 'verbose' }, 'log_level', /debug, info, error, fatal/)
		refused({ 'log_level' => 'INFO' }, 'log_level')
		refused({ 'log_time_format' => 'iso8601' }, 'log_time_format', /unix-epoch, rfc3339/)
	end

	def test_booleans
		%w[disable start_rpc ssl.insecure_skip_verify ldap_starttls ldap_insecure_plaintext].each do |n|
			['true', 'yes', 1, 'maybe'].each { |v| refused({ n => v }, n, /expected true or false/) }
		end
	end

	def test_disable
		f = render('disable' => true)
		assert_equal ['1'], shell(f, 'DISABLE')
		assert_equal '', f['monit'].strip
		refute_match(/check process/, f['monit'])
	end

	def test_start_rpc_false
		f = render('start_rpc' => false)
		assert_equal ['0'], shell(f, 'START_RPC')
		refute_match(/rpcbind|statd/, f['monit'])
		assert_match(/check process nfsv3driver\n/, f['monit'])
	end

	def test_ours
		f = render('driver_name' => 'nfs-legacy', 'run_as' => 'vcap2', 'nfs_options' => "nolock,timeo=600 'x'",
			'allowed_nfs_options' => '', 'drain_rep_process' => 'rep2')
		a = args(f)
		assert_equal 'nfs-legacy', a[a.index('--name') + 1]
		assert_equal "nolock,timeo=600 'x'", a[a.index('--nfs-options') + 1]
		assert_equal '', a[a.index('--allowed-nfs-options') + 1]
		assert_equal %w[vcap2 rep2 /var/vcap/data/voldrivers/certs/nfs-legacy], shell(f, 'RUN_AS', 'DRAIN_REP_PROCESS', 'TLS_CLIENT_DIR')
		refused({ 'driver_name' => 'a/b' }, 'driver_name')
		refused({ 'run_as' => 'root; rm' }, 'run_as')
		refused({ 'allowed_nfs_options' => 'rsize, wsize' }, 'allowed_nfs_options')
		refused({ 'drain_rep_process' => 'a-very-long-process-name' }, 'drain_rep_process')
		refused({ 'nfs_options' => "a\nb" }, 'nfs_options', /newline/)
	end

	def test_tls
		f = render(TLS)
		a = args(f)
		client = '/var/vcap/data/voldrivers/certs/nfsv3driver'
		assert_equal ["#{JOB}/config/certs/server.crt", "#{JOB}/config/certs/server.key", "#{client}/ca.crt",
			"#{client}/client.crt", "#{client}/client.key"],
			%w[--tls-cert --tls-key --tls-ca --tls-client-cert --tls-client-key].map { |x| a[a.index(x) + 1] }
		assert_equal ['1'], shell(f, 'TLS')
		{ 'config/certs/ca.crt' => 'tls.ca_cert', 'config/certs/server.crt' => 'tls.server_cert',
			'config/certs/server.key' => 'tls.server_key', 'config/certs/client.crt' => 'tls.client_cert',
			'config/certs/client.key' => 'tls.client_key' }.each { |file, n| assert_equal TLS["nfsv3driver.#{n}"], f[file], file }
		refute_match(/BEGIN/, f['config/properties.sh'])
		refute_includes args(f), '--tls-insecure-skip-verify'
		assert_includes args(render(TLS.merge('nfsv3driver.ssl.insecure_skip_verify' => true))), '--tls-insecure-skip-verify'
		assert_match %r{\Ahttps://127\.0\.0\.1:7590\z}, shell(f, 'ADMIN_URL').first
		assert_includes shell(f, 'CURL_TLS[@]').first, "#{client}/client.key"
		refute_includes args(render), '--tls-cert'
	end

	def test_tls_never_dropped
		TLS.each_key do |k|
			short = k.sub('nfsv3driver.', '')
			next if short == 'tls.ca_cert'
			refused(TLS.merge(k => ''), short, /required when tls.ca_cert is set/)
			refused({ k => TLS[k] }, short, /tls.ca_cert is empty/)
		end
		refused(TLS.merge('nfsv3driver.tls.server_key' => PEM_CERT), 'tls.server_key', /PRIVATE KEY/)
		refused(TLS.merge('nfsv3driver.tls.ca_cert' => 'not a pem'), 'tls.ca_cert', /PEM CERTIFICATE/)
		assert_match(/no effect without tls.ca_cert/, notes(render('ssl.insecure_skip_verify' => true)).join)
	end

	def test_ldap
		f = render(LDAP.merge('nfsv3driver.ldap_port' => 636, 'nfsv3driver.ldap_user_filter' => '(uid=%s)',
			'nfsv3driver.ldap_uid_attr' => 'uidNumber', 'nfsv3driver.ldap_gid_attr' => 'gidNumber', 'nfsv3driver.ldap_timeout' => 5))
		a = args(f)
		assert_equal ['ldap.example.com', '636', 'cn=svc,dc=example,dc=com', "#{JOB}/config/ldap_svc_password",
			'cn=Users,dc=example,dc=com', "#{JOB}/config/certs/ldap_ca.crt", '(uid=%s)', 'uidNumber', 'gidNumber', '5'],
			%w[--ldap-host --ldap-port --ldap-svc-user --ldap-svc-password-file --ldap-user-fqdn --ldap-ca-cert
			   --ldap-user-filter --ldap-uid-attr --ldap-gid-attr --ldap-timeout].map { |x| a[a.index(x) + 1] }
		refute_includes a, '--ldap-starttls'
		refute_includes a, '--ldap-insecure-plaintext'
		assert_equal LDAP['nfsv3driver.ldap_svc_password'], f['config/ldap_svc_password']
		refute_includes f['config/properties.sh'], 's3cret'
		assert_equal PEM_CERT, f['config/certs/ldap_ca.crt']
		assert_includes args(render(LDAP.merge('nfsv3driver.ldap_starttls' => true))), '--ldap-starttls'
		a = args(render(LDAP.merge('nfsv3driver.ldap_ca_cert' => '', 'nfsv3driver.ldap_insecure_plaintext' => true,
			'nfsv3driver.ldap_host' => 'ldap1.example.com,10.0.0.2')))
		assert_includes a, '--ldap-insecure-plaintext'
		refute_includes a, '--ldap-ca-cert'
		assert_equal ['ldap1.example.com,10.0.0.2', '389'], [a[a.index('--ldap-host') + 1], a[a.index('--ldap-port') + 1]]
		refute_includes args(render), '--ldap-host'
	end

	def test_ldap_refusals
		refused(LDAP.merge('nfsv3driver.ldap_ca_cert' => ''), 'ldap_ca_cert', /plaintext.*ldap_insecure_plaintext/)
		refused(LDAP.merge('nfsv3driver.ldap_insecure_plaintext' => true), 'ldap_insecure_plaintext', /contradicts ldap_ca_cert/)
		refused(LDAP.merge('nfsv3driver.ldap_ca_cert' => '', 'nfsv3driver.ldap_starttls' => true), 'ldap_starttls', /needs ldap_ca_cert/)
		%w[ldap_svc_user ldap_svc_password ldap_user_fqdn].each do |n|
			refused(LDAP.merge("nfsv3driver.#{n}" => ''), n, /required when ldap_host is set/)
			refused({ n => 'x' }, n, /ldap_host is empty/)
		end
		%w[ldap_user_filter ldap_uid_attr ldap_gid_attr].each { |n| refused({ n => 'x' }, n, /ldap_host is empty/) }
		refused({ 'ldap_ca_cert' => PEM_CERT }, 'ldap_ca_cert', /ldap_host is empty/)
		refused({ 'ldap_starttls' => true }, 'ldap_starttls', /ldap_host is empty/)
		refused(LDAP.merge('nfsv3driver.ldap_host' => 'a b'), 'ldap_host')
		refused(LDAP.merge('nfsv3driver.ldap_host' => 'a,,b'), 'ldap_host')
		refused({ 'ldap_proto' => 'udp' }, 'ldap_proto', /expected tcp/)
		refused(LDAP.merge('nfsv3driver.ldap_ca_cert' => PEM_KEY), 'ldap_ca_cert', /PEM CERTIFICATE/)
	end

	POLICY = { 'nfsv3driver.policy.enabled' => true,
		'nfsv3driver.policy.exports' => [
			{ 'server' => 'nfs.example.com', 'path' => '/exports/apps', 'uid' => '10000-19999', 'gid' => 10000, 'identity' => ['ldap'] },
			{ 'server' => '10.0.16.0/24', 'path' => '/shared', 'identity' => %w[none raw] },
			{ 'server' => '2001:db8::/32', 'path' => '/' },
		],
		'nfsv3driver.policy.deny_servers' => ['169.254.0.0/16', 'bad.example.com'] }.freeze

	def test_policy_off_by_default
		f = render
		refute_includes args(f), '--policy'
		assert_equal ['0'], shell(f, 'POLICY')
		refute_match(/^(export|deny)/, f['config/policy'])
		assert_match(/rm -f "\$JOB_DIR\/config\/policy"/, f['bin/pre-start'])
	end

	def test_policy_rendered_in_the_drivers_format
		f = render(POLICY)
		a = args(f)
		assert_equal "#{JOB}/config/policy", a[a.index('--policy') + 1]
		assert_equal ['1'], shell(f, 'POLICY')
		assert_equal ['export nfs.example.com /exports/apps uid=10000-19999 gid=10000 identity=ldap',
			'export 10.0.16.0/24 /shared identity=none,raw', 'export 2001:db8::/32 /',
			'deny-server 169.254.0.0/16', 'deny-server bad.example.com', 'deny-uid 0-999', 'deny-gid 0-999'],
			f['config/policy'].lines.map(&:chomp).reject { |l| l.start_with?('#') || l.empty? }
		lines = render(POLICY.merge('nfsv3driver.policy.deny_uids' => '', 'nfsv3driver.policy.deny_gids' => '0-99,65534'))['config/policy']
		assert_match(/^deny-uid 0$/, lines)
		assert_match(/^deny-gid 0-99,65534$/, lines)
	end

	# The driver's own parser reads what the template wrote (root: the file must be root's).
	def test_policy_read_by_the_driver
		bin = File.join(ENV.fetch('NFSV3_BUILD', File.expand_path('../../build', __dir__)), 'bin/nfsv3driver')
		skip "#{bin} is not built" unless File.executable?(bin)
		skip 'the policy file must be root-owned: run as root' unless Process.uid.zero?
		Dir.mktmpdir do |dir|
			File.chmod(0o755, dir)
			File.write("#{dir}/policy", render(POLICY)['config/policy'])
			out, st = Open3.capture2e(bin, 'check-policy', "#{dir}/policy")
			assert st.success?, out
			assert_match(/7 rules/, out)
		end
	end

	def test_policy_refusals
		refused({ 'policy.enabled' => true }, 'policy.exports', /is empty but policy.enabled is true/)
		refused({ 'policy.exports' => POLICY['nfsv3driver.policy.exports'] }, 'policy.exports', /policy.enabled is false/)
		refused({ 'policy.deny_servers' => ['10.0.0.1'] }, 'policy.deny_servers', /policy.enabled is false/)
		bad_entry = lambda do |entry, pattern|
			refused(POLICY.merge('nfsv3driver.policy.exports' => [{ 'server' => '10.0.0.1', 'path' => '/a' }, entry]),
				'policy.exports', pattern)
		end
		bad_entry.({ 'server' => 'bad_name', 'path' => '/a' }, /entry 1: server "bad_name": expected a DNS name/)
		bad_entry.({ 'server' => '10.0.0.1', 'path' => 'relative' }, /entry 1: path "relative": expected an absolute/)
		bad_entry.({ 'server' => '10.0.0.1', 'path' => '/a b' }, /without spaces/)
		bad_entry.({ 'server' => '10.0.0.1', 'path' => '/a/../b' }, /'\.\.'/)
		bad_entry.({ 'server' => '10.0.0.1', 'path' => '/a', 'uid' => 'x' }, /entry 1: uid: expected ids or ranges/)
		bad_entry.({ 'server' => '10.0.0.1', 'path' => '/a', 'gid' => '9-3' }, /9-3: the range ends before it starts/)
		bad_entry.({ 'server' => '10.0.0.1', 'path' => '/a', 'uid' => '4294967296' }, /ids go up to 4294967295/)
		bad_entry.({ 'server' => '10.0.0.1', 'path' => '/a', 'identity' => ['kerberos'] }, /expected a list of raw, ldap, none/)
		bad_entry.({ 'server' => '10.0.0.1', 'path' => '/a', 'identity' => 'ldap' }, /expected a list of raw, ldap, none/)
		bad_entry.({ 'server' => '10.0.0.1', 'path' => '/a', 'uids' => '1' }, /unknown key uids/)
		bad_entry.('10.0.0.1:/a', /entry 1: expected \{server, path/)
		refused(POLICY.merge('nfsv3driver.policy.exports' => 'nfs:/a'), 'policy.exports', /expected a list/)
		refused(POLICY.merge('nfsv3driver.policy.deny_servers' => ['a b']), 'policy.deny_servers', /"a b": expected/)
		refused(POLICY.merge('nfsv3driver.policy.deny_uids' => '0-x'), 'policy.deny_uids', /expected ids or ranges/)
	end

	def test_unknown_property_is_refused_by_the_renderer
		e = assert_raises(ArgumentError) { JobRender.render('nfsv3driver.drivers_path' => '/x') }
		assert_match(/unknown property nfsv3driver.drivers_path/, e.message)
	end

	def test_rendered_scripts_pass_shellcheck
		skip 'shellcheck is not installed' unless system('command -v shellcheck >/dev/null')
		[{}, TLS.merge(LDAP).merge(POLICY), { 'nfsv3driver.disable' => true, 'nfsv3driver.start_rpc' => false }].each do |o|
			Dir.mktmpdir do |dir|
				JobRender.write(dir, JobRender.render(o))
				out, st = Open3.capture2e('shellcheck', '-x', *Dir["#{dir}/bin/*"], "#{dir}/config/properties.sh")
				assert st.success?, "shellcheck #{o.keys}: #{out}"
			end
		end
	end
end
