// Teacher ← m·teacher + (1 − m)·student over parameters with the same name (all of them, frozen ones included,
// as the official zip over student.parameters() / teacher.parameters()).
import { tf, type Variable } from '../backend/tf.js';

export function checkSameParameters(student: Map<string, Variable>, teacher: Map<string, Variable>): void {
  const missing = [...student.keys()].filter((n) => !teacher.has(n));
  const extra = [...teacher.keys()].filter((n) => !student.has(n));
  if (missing.length || extra.length) {
    throw new Error(`EMA: student and teacher parameters differ (only in student: ${missing.slice(0, 5).join(', ') || '-'}; only in teacher: ${extra.slice(0, 5).join(', ') || '-'})`);
  }
  for (const [n, s] of student) {
    const t = teacher.get(n)!;
    if (s.shape.join(',') !== t.shape.join(',')) throw new Error(`EMA: '${n}' has shape [${s.shape}] in the student, [${t.shape}] in the teacher`);
  }
}

export function emaUpdate(teacher: Map<string, Variable>, student: Map<string, Variable>, momentum: number): void {
  for (const [name, t] of teacher) {
    const s = student.get(name);
    if (!s) throw new Error(`EMA: teacher parameter '${name}' has no student counterpart`);
    tf.tidy(() => {
      t.assign(tf.add(tf.mul(t, momentum), tf.mul(s, 1 - momentum)));
    });
  }
}
