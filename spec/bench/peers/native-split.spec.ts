import { expect } from 'chai';
import { nativeLayerOf, parsePerfScript, splitWindow } from '../../../bench/peers/native-split.js';

describe('bench/peers/native-split', function () {
  describe('nativeLayerOf', function () {
    it('tells the kernel, compiled JavaScript, the GC, builtins, the runtime, the parser and libc apart', function () {
      expect(nativeLayerOf('__tcp_transmit_skb', '[kernel.kallsyms]', true)).to.equal('kernel');
      expect(nativeLayerOf('JS:*parserOnIncoming node:_http_server:1026:26', '/tmp/perf-8588.map', false)).to.equal('JIT code (JavaScript)');
      expect(nativeLayerOf('0x00007fa3ac18d305', '[JIT] tid 8318', false)).to.equal('JIT code (JavaScript)');
      expect(nativeLayerOf('[unknown]', '[unknown]', false)).to.equal('JIT code (JavaScript)');
      expect(nativeLayerOf('v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot>', '/usr/bin/node', false)).to.equal('GC');
      expect(nativeLayerOf('Builtins_FindOrderedHashMapEntry', '/usr/bin/node', false)).to.equal('V8 builtins');
      expect(nativeLayerOf('v8::internal::String::ComputeAndSetRawHash', '/usr/bin/node', false)).to.equal('V8 runtime and API');
      expect(nativeLayerOf('llhttp__internal_execute', '/usr/bin/node', false)).to.equal('llhttp (HTTP parser)');
      expect(nativeLayerOf('__memmove_avx_unaligned_erms', '/usr/lib/x86_64-linux-gnu/libc.so.6', false)).to.equal('libc');
      expect(nativeLayerOf('node::StreamBase::Writev', '/usr/bin/node', false)).to.equal("Node's C++ and others");
    });
  });

  describe('parsePerfScript', function () {
    it('reads a sample whose frame is on its own line, and one whose frame is on the next (a call graph)', function () {
      const text = [
        '  677.204037:    1001001 ffffffff8a1b2c3d __tcp_transmit_skb ([kernel.kallsyms])',
        '  677.205039:    1001001 ',
        '\t         1000a8b v8::internal::StringTable::Data::FindEntry<v8::internal::Isolate> (/usr/bin/node)',
        '\t    7f45223ca840 JS:*parserOnIncoming node:_http_server:1026:26 (/tmp/perf-8588.map)',
        '',
        '  677.206041:     999000 7f45223ca840 JS:*parserOnIncoming node:_http_server:1026:26 (/tmp/perf-8588.map)',
      ].join('\n');
      expect(parsePerfScript(text)).to.deep.equal({
        samples: [
          { atS: 677.204037, periodNs: 1001001, layer: 'kernel' },
          { atS: 677.205039, periodNs: 1001001, layer: 'V8 runtime and API' },
          { atS: 677.206041, periodNs: 999000, layer: 'JIT code (JavaScript)' },
        ],
        unparsed: 0,
      });
    });

    it('reads an object with parentheses of its own, and counts the samples whose frame it cannot read', function () {
      const text = [
        '  10.000001:    1001001 55d0c0ffee node::Start(int, char**) (/usr/bin/node (deleted))',
        '  10.000002:    1001001 garbage without an object',
        '  10.000003:    1001001 ',
        '',
        '  10.000004:    1001001 ',
      ].join('\n');
      const { samples, unparsed } = parsePerfScript(text);
      expect(samples).to.deep.equal([{ atS: 10.000001, periodNs: 1001001, layer: "Node's C++ and others" }]);
      expect(unparsed).to.equal(3);
    });
  });

  describe('splitWindow', function () {
    it('counts only the samples inside the window, in µs per operation', function () {
      const samples = [
        { atS: 1.0, periodNs: 1_000_000, layer: 'kernel' as const },
        { atS: 2.0, periodNs: 1_000_000, layer: 'kernel' as const },
        { atS: 2.5, periodNs: 3_000_000, layer: 'GC' as const },
        { atS: 4.0, periodNs: 1_000_000, layer: 'GC' as const },
      ];
      const split = splitWindow(samples, { fromUs: 1.5e6, toUs: 3e6 }, 100);
      expect(split.kernel).to.equal(10);
      expect(split.GC).to.equal(30);
      expect(split.total).to.equal(40);
      expect(split['V8 builtins']).to.equal(0);
    });
  });
});
