import { VigilError } from '../../core/errors.js';
import type { EnrolService } from '../services/enrol-service.js';
import type { ControllerMetrics } from './controller-metrics.js';

/** Counts each enrolment's outcome (`vigil_enrolments_total{result}`): ok, or the code it was refused with. */
export function withEnrolMetrics(metrics: ControllerMetrics, service: EnrolService): EnrolService {
  return {
    async enrol(req, remote) {
      try {
        const res = await service.enrol(req, remote);
        metrics.enrolment('ok');
        return res;
      } catch (err) {
        metrics.enrolment(err instanceof VigilError ? err.code : 'internal');
        throw err;
      }
    },
  };
}
