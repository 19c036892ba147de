/**
 * recoveryTarget.targetTime in every form CNPG accepts (machinery ParseTargetTime): libpq's
 * timestamp text (YYYY-MM-DD HH24:MI:SS[.FF][TZH[:TZM[:TZS]]]), RFC3339, RFC3339 with
 * microseconds, and YYYY-MM-DDTHH:MM:SS without a zone (taken as UTC).
 */
const PG_TIMESTAMP = /^(\d{4,})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d+)?([+-]\d{2}(:\d{2}(:\d{2})?)?)?$/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const ISO_NO_ZONE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/;

export function isTargetTime(value: string): boolean {
  const m = PG_TIMESTAMP.exec(value) ?? RFC3339.exec(value) ?? ISO_NO_ZONE.exec(value);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && hour < 24 && minute < 60 && second < 60;
}
