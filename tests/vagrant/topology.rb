# Evaluates the Vagrantfile with a recording stand-in for Vagrant's configuration API
# and prints, as JSON, the machines, their addresses, resources and the Ansible
# provisioners: what tests/vagrant/test_vagrant.py compares with what the playbook expects.
require "json"

class Recorder
  attr_reader :calls

  def initialize
    @calls = {}
  end

  def method_missing(name, *args, **kwargs, &block)
    key = name.to_s
    if key.end_with?("=")
      @calls[key.chomp("=")] = args.first
      return args.first
    end
    # A bare accessor (config.vm) is one object; calls with arguments (define,
    # provider, network, provision) are recorded one by one.
    return @calls[key].first["value"] if args.empty? && kwargs.empty? && @calls.key?(key)
    child = Recorder.new
    (@calls[key] ||= []) << { "args" => args, "kwargs" => kwargs.transform_keys(&:to_s), "value" => child }
    # Blocks of triggers' Ruby code are actions, not configuration: never run here.
    block&.call(child) unless key == "ruby"
    child
  end

  def respond_to_missing?(*) = true

  def to_h
    @calls.to_h do |key, value|
      value = value.map { |c| c.merge("value" => c["value"].to_h) } if value.is_a?(Array) && value.first.is_a?(Hash) && value.first.key?("value")
      [key, value]
    end
  end
end

module Vagrant
  CONFIGS = []
  def self.configure(_version)
    config = Recorder.new
    yield config
    CONFIGS << config
  end
end

path = ARGV.fetch(0, "Vagrantfile")
load File.expand_path(path)
config = Vagrant::CONFIGS.fetch(0).to_h
machines = config.fetch("vm").first["value"].fetch("define", []).map do |define|
  vm = define["value"]["vm"].first["value"]
  network = (vm["network"] || []).first
  provisioners = (vm["provision"] || []).map { |p| { "type" => p["args"][0] }.merge(p["value"]) }
  lxc = (vm["provider"] || []).find { |p| p["args"][0] == "lxc" }&.fetch("value")
  {
    "name" => define["args"][0],
    "hostname" => vm["hostname"],
    "network" => network && network["args"][0],
    "ip" => network && network["kwargs"]["ip"],
    "provisioners" => provisioners,
    "lxc" => lxc && {
      "customize" => (lxc["customize"] || []).to_h { |c| c["args"] },
      "ssh_ip_addr" => lxc["ssh_ip_addr"],
    },
  }
end
providers = config["vm"].first["value"].fetch("provider", []).to_h { |p| [p["args"][0], p["value"]] }
puts JSON.pretty_generate(
  "box" => config["vm"].first["value"]["box"],
  "providers" => providers,
  "machines" => machines,
)
