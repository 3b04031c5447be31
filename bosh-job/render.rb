#!/usr/bin/env ruby
# Renders every template of this job the way the BOSH director does: the
# spec's defaults, overridden by a hash of property => value (flat names, as
# "nfsv3driver.tls.ca_cert"), into OUT_DIR.  An error a template raises (a
# bad property) fails the render as it fails a deploy.  Used by the template
# tests (test/bosh-job/) and by hand:
#   ruby bosh-job/render.rb OUT_DIR ['{"nfsv3driver.start_rpc": false}']
require 'erb'
require 'yaml'
require 'fileutils'

module JobRender
	DIR = File.dirname(File.expand_path(__FILE__))

	def self.spec = YAML.safe_load(File.read(File.join(DIR, 'spec')))

	# What the director's EvaluationContext offers the templates: p() with an
	# optional default, if_p.
	class Context
		# What the director's EvaluationContext offers as spec: the instance (made up here).
		Instance = Struct.new(:id, :index, :name, :deployment, :address)
		def initialize(props) = @props = props
		def spec = Instance.new('00000000-0000-4000-8000-000000000000', 0, 'diego-cell', 'cf', '127.0.0.1')
		def p(name, *default)
			return @props[name] if @props.key?(name) && !@props[name].nil?
			return default.first unless default.empty?
			raise "property #{name} has no value and no default"
		end
		def if_p(*names)
			values = names.map { |n| @props[n] }
			yield(*values) unless values.any?(&:nil?)
		end
		def get_binding = binding
	end

	# Returns { "bin/ctl" => text, ... , "monit" => text }; raises on a
	# property the spec does not declare or a template's error.
	def self.render(overrides = {})
		spec = self.spec
		props = {}
		spec['properties'].each { |name, p| props[name] = p['default'] if p.key?('default') }
		overrides.each do |name, value|
			raise ArgumentError, "unknown property #{name}" unless spec['properties'].key?(name)
			props[name] = value
		end
		eval_one = ->(src) { ERB.new(File.read(src), trim_mode: '-').result(Context.new(props).get_binding) }
		out = {}
		spec['templates'].each { |src, dst| out[dst] = eval_one.(File.join(DIR, 'templates', src)) }
		out['monit'] = eval_one.(File.join(DIR, 'monit'))
		out
	end

	def self.write(dir, files)
		files.each do |dst, text|
			path = File.join(dir, dst)
			FileUtils.mkdir_p(File.dirname(path))
			File.write(path, text)
			File.chmod(dst.start_with?('bin/') ? 0o755 : 0o644, path)
		end
	end
end

if $PROGRAM_NAME == __FILE__
	out = ARGV[0] or abort "usage: #{$PROGRAM_NAME} OUT_DIR [OVERRIDES]"
	begin
		files = JobRender.render(ARGV[1] ? YAML.safe_load(ARGV[1]) : {})
	rescue StandardError => e
		abort "render failed: #{e.message}"
	end
	JobRender.write(out, files)
	files.each_key { |dst| puts "rendered #{File.join(out, dst)}" }
end
