// The tfjs-layers classes fp4kit's layers extend (Dense, Conv2D). tfjs-layers exports none of them,
// but registers each for deserialization: taking it from that registry gets the class of the tfjs
// copy the program loaded, without making an instance.

import * as tf from '@tensorflow/tfjs';

/** A tfjs-layers class by its registered name ('Dense', 'Conv2D'), without making an instance (an
 *  instance would take one of tfjs's automatic layer names, dense_Dense1, from the user's layers). */
export function tfjsLayerClass<T>(className: string): T {
  const entry = (tf.serialization.SerializationMap.getMap().classNameMap as Record<string, [unknown, unknown] | undefined>)[className];
  if (entry === undefined) throw new Error(`fp4kit tfjs layers: tfjs-layers registers no ${className} class`);
  return entry[0] as T;
}
