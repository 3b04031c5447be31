#!/usr/bin/env ruby
# Development check, not used by BOSH: renders every template of this job
# with the spec's defaults (plus overrides given as a YAML/JSON hash of
# property => value) the way the BOSH director does, into OUT_DIR.
#   ruby bosh-job/render.rb OUT_DIR ['{"nfsv3driver.start_rpc": false}']
# then: shellcheck OUT_DIR/bin/*
require 'erb'
require 'yaml'
require 'fileutils'

dir = File.dirname(File.expand_path(__FILE__))
out = ARGV[0] or abort "usage: #{$0} OUT_DIR [OVERRIDES]"
overrides = ARGV[1] ? YAML.safe_load(ARGV[1]) : {}
spec = YAML.safe_load(File.read(File.join(dir, 'spec')))

props = {}
spec['properties'].each { |name, p| props[name] = p['default'] if p.key?('default') }
overrides.each do |name, value|
  abort "unknown property #{name}" unless spec['properties'].key?(name)
  props[name] = value
end

# What the director's EvaluationContext offers: p() with an optional default,
# and spec (the instance; a made-up one here).
Instance = Struct.new(:id, :index, :name, :deployment, :address)

class Context
  def initialize(props) = @props = props
  def spec = Instance.new('00000000-0000-4000-8000-000000000000', 0, 'diego-cell', 'cf', '127.0.0.1')
  def p(name, *default)
    return @props[name] if @props.key?(name) && !@props[name].nil?
    return default.first unless default.empty?
    raise "property #{name} has no value and no default"
  end
  def get_binding = binding
end

render = lambda do |src, dst|
  text = ERB.new(File.read(src), trim_mode: '-').result(Context.new(props).get_binding)
  FileUtils.mkdir_p(File.dirname(dst))
  File.write(dst, text)
  File.chmod(0o755, dst) if text.start_with?('#!')
  puts "rendered #{dst}"
end

spec['templates'].each { |src, dst| render.call(File.join(dir, 'templates', src), File.join(out, dst)) }
render.call(File.join(dir, 'monit'), File.join(out, 'monit'))
