// PyTorch's module printout:
//   MNISTConvNet(
//     (conv1): Conv2d(1, 10, kernel_size=(5, 5), stride=(1, 1))
//     ...
//   )
import type { Module } from './module.js';
import { registeredChildren } from './module.js';

function indent(text: string, spaces: number): string {
  const lines = text.split('\n');
  return [lines[0], ...lines.slice(1).map((l) => ' '.repeat(spaces) + l)].join('\n');
}

export function moduleToString(m: Module): string {
  const extra = m.extraRepr();
  const lines: string[] = extra ? extra.split('\n') : [];
  for (const [name, child] of registeredChildren(m)) {
    lines.push(`(${name}): ${indent(child ? child.toString() : 'None', 2)}`);
  }
  const name = m.constructor.name;
  if (lines.length === 0) return `${name}()`;
  if (registeredChildren(m).size === 0 && lines.length === 1) return `${name}(${lines[0]})`;
  return `${name}(\n  ${lines.join('\n  ')}\n)`;
}
